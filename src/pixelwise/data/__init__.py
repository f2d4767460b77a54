"""Data: file formats (:mod:`.io`), readers of real datasets (:mod:`.datasets`), generators of the
embedded synthetic defaults (:mod:`.synthetic`) and sample transforms (:mod:`.transforms`)."""
