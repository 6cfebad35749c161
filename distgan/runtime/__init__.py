"""The bottom layer every other package may use: paths, process groups and devices, atomic writes, hashing and
the registry pattern. It imports nothing of distgan but `errors`."""
