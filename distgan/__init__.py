"""distgan: are the images a generative model makes useful? Classifier accuracy vs IS/FID at cluster scale."""

__version__ = "0.1.0"
