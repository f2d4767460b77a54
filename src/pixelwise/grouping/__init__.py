"""Instance grouping on hyperspherical pixel embeddings (Kong & Fowlkes 2018): margin selection
(:mod:`.margin`) and turning an embedding map into scored instance proposals (:mod:`.extract`)."""

from .extract import FEATURE_NAMES, ExtractionConfig, Proposals, ProposalScorer, extract_instances, proposal_features
from .margin import Packing, best_packing, margin_table, paper_margin_bound

__all__ = [
    "FEATURE_NAMES",
    "ExtractionConfig",
    "Packing",
    "ProposalScorer",
    "Proposals",
    "best_packing",
    "extract_instances",
    "margin_table",
    "paper_margin_bound",
    "proposal_features",
]
