"""The GAN architectures and objectives that `--gan.arch` and `--gan.loss` name; registered in `models/gan.py`
(architectures) and `losses.py` (objectives). docs/gans.md describes them."""
