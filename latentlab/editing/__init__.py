"""Editing in latent space: every operation takes :class:`~latentlab.latent.Latent` values and
returns a new one.

* :mod:`~latentlab.editing.edits`: the one parser of edit requests and direction edits;
* :mod:`~latentlab.editing.mixing`: style mixing, expression transfer, morphs (W+ arithmetic);
* :mod:`~latentlab.editing.swap`: face swap (row mixing or masked optimisation);
* :mod:`~latentlab.editing.layers`: layer ranges mapped onto any generator;
* :mod:`~latentlab.editing.directions`, :mod:`~latentlab.editing.attributes`,
  :mod:`~latentlab.editing.fit`, :mod:`~latentlab.editing.unsupervised`: where directions come from.
"""
