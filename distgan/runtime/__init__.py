"""The bottom layer every other package may use: paths (and, as the layout issue moves them here, process
groups, atomic writes and hashing). It imports nothing else of distgan."""
