"""Readers of the datasets users have: NYU Depth V2, Middlebury, Sintel, SemanticKITTI, PASCAL
VOC / SBD, Cityscapes, BSDS500, user folders of image/target or image/label pairs, and the
named-source opener of the upsampling task (:func:`.upsampling_sources.open_dataset`)."""
