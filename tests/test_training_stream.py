"""The classifier loop reading its data through the streaming pipeline (DALI and the webdataset+PIL
fallback) against the memory path: it learns as well, each sample once per epoch over 2 gloo ranks,
exact resume mid-epoch and at an epoch boundary, the auto rule and the flag's validation."""

import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from distgan.config import ClassifierConfig, EngineConfig
from distgan.data.loader import PilLoader, read_index
from distgan.data.manifest import read_manifest
from distgan.data.shards import read_shards
from distgan.data.sources import ImageSplit
from distgan.errors import ConfigError, DataError
from distgan.train import batches
from distgan.train.batches import ShardSource, open_split
from distgan.train.classifier import evaluate_classifier, train_classifier

BACKENDS = ["dali", "pil"]
CFG = ClassifierConfig(arch="small_cnn", epochs=2, batch_size=64, warmup_fraction=0.25)


@pytest.fixture(scope="module")
def memory_error(digits_shards):
    model = train_classifier(CFG, read_shards(digits_shards / "train"), num_classes=10)
    return evaluate_classifier(model, read_shards(digits_shards / "test"))["top1_error"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_streaming_learns_as_well_as_memory(digits_shards, memory_error, backend):
    source = ShardSource(shard_dir=digits_shards / "train", backend=backend, num_workers=1)
    model = train_classifier(CFG, source, num_classes=10)
    test = read_shards(digits_shards / "test")
    error = evaluate_classifier(model, test)["top1_error"]
    assert memory_error < 0.75 and error < 0.75  # chance is 0.9
    assert abs(error - memory_error) < 0.15  # same recipe; only the augmentation draws and order differ
    # The streamed test set scores the same model exactly as the decoded one.
    assert evaluate_classifier(
        model, ShardSource(shard_dir=digits_shards / "test", backend=backend)
    ) == evaluate_classifier(model, test)


def _states(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


# 23 steps per epoch: step 35 is in the middle of epoch 2, step 23 is the epoch boundary. DALI resumes
# from its own checkpoint of reader position and random state; the fallback skips to the batch.
@pytest.mark.parametrize("backend, every, resume_at", [("dali", 7, 35), ("dali", 23, 23), ("pil", 7, 35)])
def test_stream_resume_equals_uninterrupted(digits_shards, tmp_path, backend, every, resume_at):
    source = ShardSource(shard_dir=digits_shards / "train", backend=backend, num_workers=1)
    engine = EngineConfig(checkpoint_every_steps=every)
    whole = _states(train_classifier(CFG, source, num_classes=10, engine_cfg=engine, checkpoint_dir=tmp_path / "a"))
    # A run that died after step `resume_at`: its newest complete checkpoint is that step's.
    crashed = tmp_path / "b"
    shutil.copytree(tmp_path / "a", crashed)
    for later in crashed.glob("step*"):
        if int(later.name[4:]) > resume_at:
            shutil.rmtree(later)
    (crashed / "latest").write_text(f"step{resume_at:09d}\n")
    resumed = _states(train_classifier(CFG, source, num_classes=10, engine_cfg=engine, checkpoint_dir=crashed))
    for key, value in whole.items():
        torch.testing.assert_close(resumed[key], value, rtol=0, atol=0, msg=key)


def _rank_main(rank: int, port: int, shard_dir: str, backend: str, out: str) -> None:
    """One gloo rank: a 1-epoch stream run, recording the sample indices (PIL) or labels (DALI) it trains on."""
    os.environ |= {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank), "WORLD_SIZE": "2"}
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    seen = []
    original = PilLoader.epoch

    def recording(self, epoch, start_batch=0):
        for batch in original(self, epoch, start_batch):
            seen.append(batch["indices"])
            yield batch

    PilLoader.epoch = recording
    original_fetch = batches.StreamBatches.epoch

    def labels_too(self, epoch, start_step):
        for micro_batches in original_fetch(self, epoch, start_step):
            if backend == "dali":
                seen.extend(labels for _, labels in micro_batches)
            yield micro_batches

    batches.StreamBatches.epoch = labels_too
    source = ShardSource(shard_dir=Path(shard_dir), backend=backend, num_workers=1)
    train_classifier(
        ClassifierConfig(arch="small_cnn", epochs=1, batch_size=64, warmup_fraction=0.25), source, num_classes=10
    )
    torch.save(torch.cat(seen), f"{out}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_ranks_see_each_sample_once_per_epoch(digits_shards, tmp_path, backend):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.multiprocessing.spawn(_rank_main, args=(port, str(digits_shards / "train"), backend, str(tmp_path)), nprocs=2)
    seen = [torch.load(tmp_path / f"rank{r}.pt").numpy() for r in range(2)]
    manifest = read_manifest(digits_shards / "train")
    if backend == "pil":
        keys = [key for shard in manifest["shards"] for key, _ in read_index(digits_shards / "train", shard)]
        assert len(keys) == manifest["num_samples"] == 1437
        union = np.concatenate(seen)
        assert len(seen[0]) == len(seen[1]) == 719  # 1,437 padded to 1,438: one sample of the head repeats
        assert {keys[i] for i in union} == set(keys)
        assert len(union) - len(set(union.tolist())) == 1
    else:
        # DALI splits the samples between ranks without padding (no keys come out of its reader): the
        # labels trained on over both ranks are exactly the manifest's class histogram.
        assert sum(len(s) for s in seen) == 1437
        assert np.bincount(np.concatenate(seen), minlength=10).tolist() == manifest["class_counts"]


def test_auto_streams_above_the_memory_cap(digits_shards, monkeypatch):
    assert isinstance(open_split(digits_shards / "train", ClassifierConfig()), ImageSplit)  # 1,437 × 16 × 16: < 2 GiB
    monkeypatch.setattr(batches, "MEMORY_CAP_GIB", 1e-3)
    cfg = ClassifierConfig(loader_backend="pil", loader_workers=3)
    assert open_split(digits_shards / "train", cfg) == ShardSource(
        shard_dir=digits_shards / "train", backend="pil", num_workers=3
    )
    assert isinstance(open_split(digits_shards / "train", ClassifierConfig(loader="memory")), ImageSplit)


@pytest.mark.parametrize(
    "field, value, flag",
    [("loader", "disk", "--classifier.loader"), ("loader_backend", "nvjpeg", "--classifier.loader-backend")],
)
def test_loader_flags_are_validated_by_name(field, value, flag):
    with pytest.raises(ConfigError, match=f"{flag} must be .* \\(got '{value}'\\)"):
        ClassifierConfig(**{field: value})


def test_an_empty_dali_batch_is_padded_with_the_previous_sample(digits_shards, monkeypatch):
    # Rank 0 of 2 gets 718 of 1,437 samples from DALI: two batches of 359, then an empty one, while rank 1
    # has a third batch of 1. The empty one becomes one repeated sample, so both ranks take 3 steps.
    monkeypatch.setattr(batches.distributed, "world_size", lambda: 2)
    source = ShardSource(shard_dir=digits_shards / "train", backend="dali", num_workers=1)
    stream = batches.StreamBatches(source, CFG, step_samples=359, micro_batch=359, device=torch.device("cpu"))
    steps = [micro_batches[0] for micro_batches in stream.epoch(0, 0)]
    assert [len(labels) for _, labels in steps] == [359, 359, 1]
    torch.testing.assert_close(steps[2][0], steps[1][0][-1:], rtol=0, atol=0)


def test_resuming_with_another_loader_is_refused_by_name(digits_shards, tmp_path):
    engine, cfg = EngineConfig(checkpoint_every_steps=23), CFG
    pil = ShardSource(shard_dir=digits_shards / "train", backend="pil", num_workers=0)
    short = ClassifierConfig(arch="small_cnn", epochs=1, batch_size=64, warmup_fraction=0.25)
    train_classifier(short, pil, num_classes=10, engine_cfg=engine, checkpoint_dir=tmp_path)
    dali = ShardSource(shard_dir=digits_shards / "train", backend="dali", num_workers=1)
    with pytest.raises(DataError, match="reading stream-pil, this run streams with dali.*--classifier.loader-backend"):
        train_classifier(cfg, dali, num_classes=10, engine_cfg=engine, checkpoint_dir=tmp_path)
    with pytest.raises(DataError, match="reading stream-pil, this run reads memory.*--classifier.loader"):
        train_classifier(
            cfg, read_shards(digits_shards / "train"), num_classes=10, engine_cfg=engine, checkpoint_dir=tmp_path
        )
