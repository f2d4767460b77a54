"""Official SqueezeSegV3 checkpoints (pixelwise.tasks.lidar.official): the key table against an
independent network written in the official layout, import / export round trips, the errors, and
``pixelwise lidar import-official`` + ``--model official:<folder>`` end to end.

The reference network below follows the layer-by-layer description of the released code in
``../shared/spec/squeezesegv3.md`` and names its modules as the official code does, so its
``state_dict`` *is* an official checkpoint; it shares no code with ``pixelwise.models``.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from pixelwise.cli import main
from pixelwise.data.datasets.semantic_kitti import SPLITS, LabelMap
from pixelwise.data.io.semantic_kitti import read_scan
from pixelwise.engine import load_checkpoint
from pixelwise.models import count_parameters, create_model
from pixelwise.tasks import load_run
from pixelwise.tasks.lidar import LidarConfig
from pixelwise.tasks.lidar.official import (COMPILED_KEY_TABLE, KEY_TABLE, OFFICIAL_FILES, OfficialCheckpointError, import_official,
                                            official_to_ours, ours_to_official, read_official_folder,
                                            write_official_folder)

KITTI = Path(__file__).resolve().parents[2] / "shared" / "data" / "semantic-kitti"
needs_kitti = pytest.mark.skipif(not KITTI.exists(), reason="SemanticKITTI sample not present")
BLOCKS = {21: (1, 1, 2, 2, 1), 53: (1, 2, 8, 8, 4)}
NUM_CLASSES = 20


def channels(c: int, width: float) -> int:
    """Our width scaling (the official network is width 1)."""
    return max(4, round(c * width))


# --------------------------------------------------------------------------- the official-layout reference


class RefSACBlock(nn.Module):
    """attention_x: 7x7 conv 3 -> 9C + BN; position_mlp_2: 1x1 conv 9C -> C, BN, ReLU, 3x3 conv, BN, ReLU."""

    def __init__(self, c: int):
        super().__init__()
        self.attention_x = nn.Sequential(nn.Conv2d(3, 9 * c, kernel_size=7, padding=3), nn.BatchNorm2d(9 * c))
        self.position_mlp_2 = nn.Sequential(nn.Conv2d(9 * c, c, kernel_size=1), nn.BatchNorm2d(c), nn.ReLU(),
                                            nn.Conv2d(c, c, kernel_size=3, padding=1), nn.BatchNorm2d(c), nn.ReLU())

    def forward(self, xyz, feature):
        n, _, h, w = feature.shape
        unfolded = F.unfold(feature, kernel_size=3, padding=1).view(n, -1, h, w)
        return self.position_mlp_2(unfolded * torch.sigmoid(self.attention_x(xyz))) + feature


class RefBackbone(nn.Module):
    def __init__(self, depth: int, width: float):
        super().__init__()
        ch = lambda c: channels(c, width)  # noqa: E731
        self.conv1 = nn.Conv2d(5, ch(32), kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch(32), momentum=0.01)
        self.relu1 = nn.LeakyReLU(0.1)
        spec = ((32, 64, True), (64, 128, True), (128, 256, True), (256, 256, False), (256, 256, False))
        for i, ((c_in, c_out, down), n) in enumerate(zip(spec, BLOCKS[depth]), 1):
            layers = [(f"residual_{j}", RefSACBlock(ch(c_in))) for j in range(n)]
            if down:
                layers += [("conv", nn.Conv2d(ch(c_in), ch(c_out), kernel_size=3, stride=(1, 2), padding=1,
                                              bias=False)),
                           ("bn", nn.BatchNorm2d(ch(c_out), momentum=0.01)), ("relu", nn.LeakyReLU(0.1))]
            setattr(self, f"enc{i}", nn.Sequential(OrderedDict(layers)))
        self.dropout = nn.Dropout2d(0.01)

    def forward(self, x):
        xyz = x[:, 1:4]
        feature = self.relu1(self.bn1(self.conv1(x)))
        skips, os = {}, 1
        for i in range(1, 6):
            y = feature
            for name, module in getattr(self, f"enc{i}").named_children():
                y = module(xyz, y) if name.startswith("residual_") else module(y)
            if "conv" in dict(getattr(self, f"enc{i}").named_children()):
                xyz = F.interpolate(xyz, size=(xyz.shape[2], xyz.shape[3] // 2), mode="bilinear", align_corners=True)
            if y.shape[3] < feature.shape[3]:
                skips[os] = feature.detach()
                os *= 2
            feature = self.dropout(y)
        return feature, skips


class RefBasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: tuple[int, int]):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes[0], kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes[0], momentum=0.01)
        self.relu1 = nn.LeakyReLU(0.1)
        self.conv2 = nn.Conv2d(planes[0], planes[1], kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes[1], momentum=0.01)
        self.relu2 = nn.LeakyReLU(0.1)

    def forward(self, x):
        return self.relu2(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))) + x


class RefDecoder(nn.Module):
    def __init__(self, width: float):
        super().__init__()
        ch = lambda c: channels(c, width)  # noqa: E731
        for name, c_in, c_out, stride in (("dec5", 256, 256, 1), ("dec4", 256, 256, 1), ("dec3", 256, 128, 2),
                                          ("dec2", 128, 64, 2), ("dec1", 64, 32, 2)):
            first = (("upconv", nn.ConvTranspose2d(ch(c_in), ch(c_out), kernel_size=(1, 4), stride=(1, 2),
                                                   padding=(0, 1))) if stride == 2
                     else ("conv", nn.Conv2d(ch(c_in), ch(c_out), kernel_size=3, padding=1)))
            setattr(self, name, nn.Sequential(OrderedDict([
                first, ("bn", nn.BatchNorm2d(ch(c_out), momentum=0.01)), ("relu", nn.LeakyReLU(0.1)),
                ("residual", RefBasicBlock(ch(c_out), (ch(c_in), ch(c_out))))])))
        self.dropout = nn.Dropout2d(0.01)

    def forward(self, x, skips):
        os, outs = 8, []
        for name in ("dec5", "dec4", "dec3", "dec2", "dec1"):
            feats = getattr(self, name)(x)
            if feats.shape[-1] > x.shape[-1]:
                os //= 2
                feats = feats + skips[os].detach()
            x = feats
            outs.append(x)
        outs[-1] = self.dropout(outs[-1])
        return outs[::-1]  # [x5, x4, x3, x2, x1]


class RefSegmentator(nn.Module):
    def __init__(self, depth: int = 21, width: float = 1.0):
        super().__init__()
        ch = lambda c: channels(c, width)  # noqa: E731
        self.backbone = RefBackbone(depth, width)
        self.decoder = RefDecoder(width)
        for n, c, k in ((1, 256, 1), (2, 256, 1), (3, 128, 1), (4, 64, 1), (5, 32, 3)):
            conv = nn.Conv2d(ch(c), NUM_CLASSES, k, padding=k // 2)
            setattr(self, f"head{n}", nn.Sequential(nn.Dropout2d(0.01), conv))

    def logits(self, x):
        """The five heads before their softmax, full width first: head5 .. head1."""
        y = self.decoder(*self.backbone(x))
        return [self.head5(y[0]), self.head4(y[1]), self.head3(y[2]), self.head2(y[3]), self.head1(y[4])]

    def forward(self, x):  # the release returns softmaxes
        return [F.softmax(z, dim=1) for z in self.logits(x)]

    def official_files(self) -> dict[str, dict]:
        return {"backbone": self.backbone.state_dict(), "segmentation_decoder": self.decoder.state_dict(),
                **{f"segmentation_head{n}": getattr(self, f"head{n}").state_dict() for n in range(1, 6)}}


# --------------------------------------------------------------------------- the layout, from the description


def _bn(prefix: str, c: int) -> dict:
    return {**{f"{prefix}.{p}": (c,) for p in ("weight", "bias", "running_mean", "running_var")},
            f"{prefix}.num_batches_tracked": ()}


def official_layout(depth: int) -> dict[str, dict[str, tuple]]:
    """The official checkpoint's files, keys and shapes at width 1, written out from the layout."""
    backbone = {"conv1.weight": (32, 5, 3, 3), **_bn("bn1", 32)}
    for i, ((c_in, c_out), n) in enumerate(zip(((32, 64), (64, 128), (128, 256), (256, 256), (256, 256)),
                                               BLOCKS[depth]), 1):
        for j in range(n):
            b = f"enc{i}.residual_{j}"
            backbone.update({f"{b}.attention_x.0.weight": (9 * c_in, 3, 7, 7), f"{b}.attention_x.0.bias": (9 * c_in,),
                             **_bn(f"{b}.attention_x.1", 9 * c_in),
                             f"{b}.position_mlp_2.0.weight": (c_in, 9 * c_in, 1, 1),
                             f"{b}.position_mlp_2.0.bias": (c_in,), **_bn(f"{b}.position_mlp_2.1", c_in),
                             f"{b}.position_mlp_2.3.weight": (c_in, c_in, 3, 3),
                             f"{b}.position_mlp_2.3.bias": (c_in,), **_bn(f"{b}.position_mlp_2.4", c_in)})
        if i <= 3:
            backbone.update({f"enc{i}.conv.weight": (c_out, c_in, 3, 3), **_bn(f"enc{i}.bn", c_out)})
    decoder = {}
    for name, c_in, c_out, stride in (("dec5", 256, 256, 1), ("dec4", 256, 256, 1), ("dec3", 256, 128, 2),
                                      ("dec2", 128, 64, 2), ("dec1", 64, 32, 2)):
        first = {f"{name}.upconv.weight": (c_in, c_out, 1, 4), f"{name}.upconv.bias": (c_out,)} if stride == 2 else \
            {f"{name}.conv.weight": (c_out, c_in, 3, 3), f"{name}.conv.bias": (c_out,)}
        decoder.update({**first, **_bn(f"{name}.bn", c_out),
                        f"{name}.residual.conv1.weight": (c_in, c_out, 1, 1), **_bn(f"{name}.residual.bn1", c_in),
                        f"{name}.residual.conv2.weight": (c_out, c_in, 3, 3), **_bn(f"{name}.residual.bn2", c_out)})
    heads = {f"segmentation_head{n}": {"1.weight": (NUM_CLASSES, c, k, k), "1.bias": (NUM_CLASSES,)}
             for n, c, k in ((1, 256, 1), (2, 256, 1), (3, 128, 1), (4, 64, 1), (5, 32, 3))}
    return {"backbone": backbone, "segmentation_decoder": decoder, **heads}


def shapes(files: dict[str, dict]) -> dict[str, dict[str, tuple]]:
    return {f: {k: tuple(v.shape) for k, v in state.items()} for f, state in files.items()}


# --------------------------------------------------------------------------- helpers


def randomise(model: nn.Module, seed: int) -> nn.Module:
    """Random weights everywhere, and BN statistics and affine parameters far from identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            fan_in = p[0].numel() if p.dim() > 1 else 1
            p.copy_(torch.randn(p.shape, generator=g) / max(1, fan_in) ** 0.5)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
                m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (), generator=g)))
    return model


def arch_yaml(depth: int, width: float | None, *, height: int = 8, image_width: int = 64) -> dict:
    """An arch_cfg.yaml as the official log folders hold it (SSGV321.yaml's sections)."""
    extra = {"layers": depth}
    if width is not None:
        extra["pixelwise_width"] = width
    return {
        "train": {"loss": "xentropy", "max_epochs": 150, "lr": 0.01, "wup_epochs": 1, "momentum": 0.9,
                  "lr_decay": 0.995, "w_decay": 0.0001, "batch_size": 8, "epsilon_w": 0.001},
        "backbone": {"name": "SAC", "input_depth": {"range": True, "xyz": True, "remission": True}, "dropout": 0.01,
                     "bn_d": 0.01, "OS": 8, "train": True, "extra": extra},
        "decoder": {"name": "SAC", "dropout": 0.01, "bn_d": 0.01, "train": True, "extra": False},
        "head": {"name": "segmentation", "train": True, "dropout": 0.01},
        "post": {"CRF": {"use": False, "train": True, "params": False},
                 "KNN": {"use": True, "params": {"knn": 5, "search": 5, "sigma": 1.0, "cutoff": 1.0}}},
        "dataset": {"labels": "kitti", "scans": "kitti", "max_points": 150000,
                    "sensor": {"name": "HDL64", "type": "spherical", "fov_up": 3, "fov_down": -25,
                               "img_prop": {"width": image_width, "height": height},
                               "img_means": [12.12, 10.88, 0.23, -1.04, 0.21],
                               "img_stds": [12.32, 11.47, 6.91, 0.86, 0.16]}},
    }


def write_reference_folder(net: RefSegmentator, folder: Path, arch: dict) -> Path:
    """What the official code leaves in a log folder: torch.save per part + the two yamls."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, state in net.official_files().items():
        torch.save(state, folder / name)
    (folder / "arch_cfg.yaml").write_text(yaml.safe_dump(arch, sort_keys=False))
    if (KITTI / "semantic-kitti.yaml").is_file():  # the real label yaml the official code copies in
        shutil.copy(KITTI / "semantic-kitti.yaml", folder / "data_cfg.yaml")
    else:
        data = {"name": "kitti", **LabelMap.default().to_dict(), "split": {k: list(v) for k, v in SPLITS.items()}}
        (folder / "data_cfg.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


def rand(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# --------------------------------------------------------------------------- layout and the key table


@pytest.mark.parametrize("depth, total", [(21, 9_247_140), (53, 25_959_588)])
def test_reference_has_the_official_layout_and_parameter_count(depth, total):
    ref = RefSegmentator(depth)
    assert count_parameters(ref) == total
    layout = official_layout(depth)
    assert shapes(ref.official_files()) == layout
    # our network, translated by the key table, has exactly that layout, and back
    ours = create_model(f"ssgv3_{depth}").state_dict()
    assert shapes(ours_to_official(ours)) == layout
    back = official_to_ours(ours_to_official(ours), ours)
    assert list(back) == list(ours) and all(back[k] is ours[k] for k in ours)


def test_key_table_rows_are_each_used():
    ours = {**create_model("ssgv3_21", width=0.125).state_dict()}
    used = set()
    for key in ours:
        used |= {i for i, (_, _, pattern) in enumerate(COMPILED_KEY_TABLE) if pattern.match(key)}
    assert used == set(range(len(KEY_TABLE)))


# --------------------------------------------------------------------------- import equals the reference


@pytest.mark.parametrize("depth, width", [(21, 1.0), (21, 0.125), (53, 0.125)])
def test_imported_model_computes_what_the_reference_computes(depth, width, tmp_path):
    torch.manual_seed(depth)
    ref = randomise(RefSegmentator(depth, width), seed=1).eval()
    folder = write_reference_folder(ref, tmp_path / "log", arch_yaml(depth, None if width == 1 else width))
    out = import_official(folder, tmp_path / "run", log=lambda m: None)
    loaded = load_run(out, task="lidar")
    model = loaded.model
    assert loaded.model_name == f"ssgv3_{depth}" and model.width == width and not model.training
    x = rand(2, 5, 8, 64, seed=2)
    with torch.no_grad():
        expected = ref.logits(x)
        # float32, another summation order: rounding grows with the activations' size (logits up
        # to ~65 through SSGV3-53's 23 SAC blocks with random BN), so atol follows the logits' scale
        atol = max(1e-5, 2e-6 * max(float(z.abs().max()) for z in expected))
        torch.testing.assert_close(model(x), expected[0], rtol=1e-4, atol=atol)
        torch.testing.assert_close(model(x).softmax(1), ref(x)[0], rtol=1e-4, atol=1e-5)
        for ours, theirs in zip(model(x, aux=True), expected, strict=True):
            torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=atol)
        ref64, model64, x64 = ref.double(), model.double(), x.double()
        for ours, theirs in zip(model64(x64, aux=True), ref64.logits(x64), strict=True):
            torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-11)
    # what the yaml says reached the run config
    cfg = loaded.config
    assert (cfg.height, cfg.image_width, cfg.fov_up, cfg.fov_down) == (8, 64, 3.0, -25.0)
    assert cfg.sensor_means == [12.12, 10.88, 0.23, -1.04, 0.21] and cfg.sensor_stds[3] == 0.86
    assert (cfg.knn.k, cfg.knn.window, cfg.knn.sigma, cfg.knn.cutoff, cfg.knn.enabled) == (5, 5, 1.0, 1.0, True)
    assert cfg.knn.mode == "reference" and loaded.extras["knn"].mode == "reference"
    assert loaded.extras["projection"].means == (12.12, 10.88, 0.23, -1.04, 0.21)
    provenance = json.loads((out / "imported.json").read_text())
    assert set(provenance["files"]) == {*OFFICIAL_FILES, "arch_cfg.yaml", "data_cfg.yaml"}


def test_ssgv3_53_yaml_statistics_are_taken_as_they_are(tmp_path):
    # The SSGV3-53 yaml lists range and z statistics swapped; a checkpoint trained with it must be
    # fed with those numbers, so they are copied, not "corrected".
    ref = randomise(RefSegmentator(53, 0.125), seed=3).eval()
    arch = arch_yaml(53, 0.125)
    arch["dataset"]["sensor"]["img_means"] = [-1.04, 10.88, 0.23, 12.12, 0.21]
    arch["dataset"]["sensor"]["img_stds"] = [0.86, 11.47, 6.91, 12.32, 0.16]
    ckpt = read_official_folder(write_reference_folder(ref, tmp_path / "log", arch))
    assert ckpt.config.projection().means == (-1.04, 10.88, 0.23, 12.12, 0.21)
    assert ckpt.config.projection().stds == (0.86, 11.47, 6.91, 12.32, 0.16)


# --------------------------------------------------------------------------- our model -> official -> ours


def test_round_trip_is_bitwise(tmp_path):
    torch.manual_seed(0)
    model = randomise(create_model("ssgv3_21", width=0.125), seed=4).eval()
    cfg = LidarConfig(width=0.125, height=8, image_width=64, fov_up=2.0, fov_down=-24.5,
                      sensor_means=[1.0, 2.0, 3.0, 4.0, 5.0], sensor_stds=[1.5, 2.5, 3.5, 4.5, 5.5])
    cfg.knn.k, cfg.knn.window, cfg.knn.enabled = 9, 9, False
    folder = write_official_folder(model, tmp_path / "log", config=cfg)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*OFFICIAL_FILES, "arch_cfg.yaml", "data_cfg.yaml"])
    arch = yaml.safe_load((folder / "arch_cfg.yaml").read_text())
    assert arch["backbone"]["extra"] == {"layers": 21, "pixelwise_width": 0.125}
    assert LabelMap.from_yaml(folder / "data_cfg.yaml") == LabelMap.default()
    # legacy (pre-zip) torch.save files, which the official code's torch 1.1 reads
    assert not any(zipfile.is_zipfile(folder / name) for name in OFFICIAL_FILES)
    # the state dicts load with weights_only, and into the reference network
    ref = RefSegmentator(21, 0.125)
    for name, state in ref.official_files().items():
        saved = torch.load(folder / name, map_location="cpu", weights_only=True)
        getattr(ref, {"backbone": "backbone", "segmentation_decoder": "decoder"}.get(name, name.replace(
            "segmentation_", ""))).load_state_dict(saved, strict=True)
    out = import_official(folder, tmp_path / "run", log=lambda m: None)
    loaded = load_run(out, task="lidar")
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key
    x = rand(1, 5, 8, 64, seed=5)
    with torch.no_grad():
        expected = model(x, aux=True)
        assert all(torch.equal(a, b) for a, b in zip(loaded.model(x, aux=True), expected, strict=True))
        torch.testing.assert_close(ref.eval().logits(x)[0], expected[0], rtol=1e-4, atol=1e-5)
        # --model official:<folder> converts on the fly to the same model
        direct = load_run(f"official:{folder}", task="lidar")
        assert direct.run_dir is None and direct.model_name == "ssgv3_21"
        assert torch.equal(direct.model(x), expected[0])
    got = loaded.config
    assert (got.height, got.image_width, got.fov_up, got.fov_down) == (8, 64, 2.0, -24.5)
    assert got.sensor_means == cfg.sensor_means and got.sensor_stds == cfg.sensor_stds
    # post.KNN.use is not taken: kNN runs here unless --no-knn
    assert (got.knn.k, got.knn.window, got.knn.enabled) == (9, 9, True)
    assert load_checkpoint(out / "model").model_config == {"num_classes": 20, "width": 0.125}


def test_only_the_released_network_has_an_official_layout(tmp_path):
    ablation = create_model("ssgv3_ablation_21", width=0.125)
    with pytest.raises(OfficialCheckpointError, match="only the released network"):
        write_official_folder(ablation, tmp_path / "x")
    with pytest.raises(OfficialCheckpointError, match="no counterpart in the official"):
        ours_to_official(ablation.state_dict())
    state = create_model("ssgv3_21", width=0.125).state_dict()
    with pytest.raises(OfficialCheckpointError, match="nothing to write to official file.*segmentation_head1"):
        ours_to_official({k: v for k, v in state.items() if not k.startswith("heads.4.")})


# --------------------------------------------------------------------------- errors


@pytest.fixture(scope="module")
def official_folder(tmp_path_factory):
    torch.manual_seed(0)
    model = randomise(create_model("ssgv3_21", width=0.125), seed=6).eval()
    return write_official_folder(model, tmp_path_factory.mktemp("official") / "log",
                                 config=LidarConfig(width=0.125, height=8, image_width=64))


@pytest.fixture
def copy(official_folder, tmp_path):
    return Path(shutil.copytree(official_folder, tmp_path / "log"))


def edit_state(folder: Path, name: str, change) -> None:
    state = torch.load(folder / name, map_location="cpu", weights_only=True)
    change(state)
    torch.save(state, folder / name)


def edit_yaml(folder: Path, name: str, change) -> None:
    doc = yaml.safe_load((folder / name).read_text())
    change(doc)
    (folder / name).write_text(yaml.safe_dump(doc))


def _touch(path: str):
    Path(path).write_text("executed")
    return {}


class Payload:
    """Unpickling this calls _touch: code run by loading a file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return _touch, (str(self.marker),)


def test_a_file_with_pickled_code_is_refused_and_never_run(copy, tmp_path):
    marker = tmp_path / "ran"
    torch.save({"1.weight": Payload(marker), "1.bias": torch.zeros(20)}, copy / "segmentation_head3")
    with pytest.raises(OfficialCheckpointError, match=r"segmentation_head3: holds pickled code \(Unsupported global: "
                                                      r"GLOBAL .*_touch.*\), which is not loaded"):
        read_official_folder(copy)
    with pytest.raises(OfficialCheckpointError, match="pickled code"):
        import_official(copy, tmp_path / "run", log=lambda m: None)
    assert not marker.exists() and not (tmp_path / "run" / "model.json").exists()
    # the payload is real: a plain (unsafe) unpickling runs it
    with open(copy / "segmentation_head3", "rb") as fh:
        torch.load(io.BytesIO(fh.read()), weights_only=False)
    assert marker.read_text() == "executed"


def test_missing_and_damaged_files_are_named(copy, tmp_path):
    (copy / "segmentation_decoder").unlink()
    with pytest.raises(OfficialCheckpointError, match=r"segmentation_decoder: missing"):
        read_official_folder(copy)
    (copy / "segmentation_decoder").write_bytes(b"not a checkpoint")
    with pytest.raises(OfficialCheckpointError, match=r"segmentation_decoder: not a torch.save file of tensors"):
        read_official_folder(copy)
    (copy / "segmentation_decoder").write_bytes(b"")
    with pytest.raises(OfficialCheckpointError, match=r"segmentation_decoder: not a readable torch.save file"):
        read_official_folder(copy)
    (copy / "data_cfg.yaml").unlink()
    with pytest.raises(OfficialCheckpointError, match=r"data_cfg.yaml: missing"):
        read_official_folder(copy)
    with pytest.raises(OfficialCheckpointError, match="no such folder"):
        read_official_folder(tmp_path / "nowhere")
    with pytest.raises(OfficialCheckpointError, match=r"missing file\(s\) segmentation_head2"):
        official_to_ours({f: {} for f in OFFICIAL_FILES if f != "segmentation_head2"})
    with pytest.raises(OfficialCheckpointError, match=r"unexpected file\(s\) head6"):
        official_to_ours({**{f: {} for f in OFFICIAL_FILES}, "head6": {}})


def test_extra_keys_are_named_with_their_file(copy):
    edit_state(copy, "backbone", lambda s: s.update({"enc1.residual_0.extra.weight": torch.zeros(1)}))
    with pytest.raises(OfficialCheckpointError, match=r"extra keys\): backbone: enc1.residual_0.extra.weight"):
        read_official_folder(copy).build_model()


def test_a_mapped_key_the_network_lacks_is_extra(copy):
    # enc4 has no downsampling conv; a third SAC block in stage 1 does not exist in SSGV3-21
    edit_state(copy, "backbone", lambda s: s.update({"enc4.conv.weight": torch.zeros(1),
                                                     "enc1.residual_1.position_mlp_2.0.bias": torch.zeros(4)}))
    with pytest.raises(OfficialCheckpointError, match=r"extra keys .*backbone: enc4.conv.weight, "
                                                      r"enc1.residual_1.position_mlp_2.0.bias"):
        read_official_folder(copy).build_model()


def test_missing_keys_are_named_with_their_file(copy):
    edit_state(copy, "segmentation_decoder", lambda s: s.pop("dec3.bn.running_var"))
    edit_state(copy, "segmentation_head5", lambda s: s.pop("1.bias"))
    with pytest.raises(OfficialCheckpointError, match=r"missing keys: segmentation_decoder: dec3.bn.running_var; "
                                                      r"segmentation_head5: 1.bias"):
        read_official_folder(copy).build_model()


def test_a_wrong_shape_names_key_file_and_both_shapes(copy):
    edit_state(copy, "segmentation_decoder", lambda s: s.update({"dec1.upconv.weight": torch.zeros(8, 4, 1, 3)}))
    with pytest.raises(OfficialCheckpointError, match=r"segmentation_decoder: dec1.upconv.weight has shape "
                                                      r"\(8, 4, 1, 3\) in the file, but our decoder.4.up.0.weight "
                                                      r"needs \(8, 4, 1, 4\)"):
        read_official_folder(copy).build_model()


def test_a_full_width_checkpoint_read_as_narrow_fails_on_shapes(copy):
    edit_yaml(copy, "arch_cfg.yaml", lambda d: d["backbone"]["extra"].pop("pixelwise_width"))
    with pytest.raises(OfficialCheckpointError, match=r"backbone: conv1.weight has shape \(4, 5, 3, 3\) in the file, "
                                                      r"but our stem.0.weight needs \(32, 5, 3, 3\)"):
        read_official_folder(copy).build_model()


@pytest.mark.parametrize("change, message", [
    (lambda d: d["backbone"]["extra"].update(layers=34), r"backbone.extra.layers is 34; SqueezeSegV3 has 21 or 53"),
    (lambda d: d["backbone"]["input_depth"].update(remission=False), r"input_depth leaves out remission; unsupported"),
    (lambda d: d["backbone"].update(name="darknet"), r"backbone.name is 'darknet'; only SqueezeSegV3's 'SAC'"),
    (lambda d: d["backbone"].update(OS=16), r"backbone.OS is 16; unsupported"),
    (lambda d: d["dataset"]["sensor"].pop("img_stds"), r"missing dataset.sensor.img_stds"),
    (lambda d: d["dataset"]["sensor"].update(img_means=[1, 2, 3]), r"img_means must be 5 numbers"),
    (lambda d: d["dataset"]["sensor"]["img_prop"].update(width=100), r"image_width: must be a multiple of 8"),
    (lambda d: d["post"]["KNN"]["params"].pop("sigma"), r"missing post.KNN.params.sigma"),
    (lambda d: d["post"]["CRF"].update(use=True), r"CRF post-processing is not supported"),
])
def test_unsupported_arch_yaml_is_named(copy, change, message):
    edit_yaml(copy, "arch_cfg.yaml", change)
    with pytest.raises(OfficialCheckpointError, match=r"arch_cfg.yaml: .*" + message):
        read_official_folder(copy)


def test_another_label_map_is_refused(copy):
    edit_yaml(copy, "data_cfg.yaml", lambda d: d["learning_map"].update({52: 13}))
    with pytest.raises(OfficialCheckpointError, match=r"data_cfg.yaml: learning_map differ\(s\) from the standard"):
        read_official_folder(copy)
    edit_yaml(copy, "data_cfg.yaml", lambda d: d["learning_map_inv"].pop(19))
    with pytest.raises(OfficialCheckpointError, match=r"data_cfg.yaml: "):
        read_official_folder(copy)


def test_an_existing_model_is_not_overwritten(official_folder, tmp_path):
    out = import_official(official_folder, tmp_path / "run", log=lambda m: None)
    with pytest.raises(FileExistsError, match="already holds a model"):
        import_official(official_folder, out, log=lambda m: None)


# --------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def hdl64_folder(tmp_path_factory):
    """A narrow SSGV3-21 at the HDL-64E's 64 x 2048 in the official layout."""
    torch.manual_seed(1)
    model = randomise(create_model("ssgv3_21", width=0.125), seed=7).eval()
    return write_official_folder(model, tmp_path_factory.mktemp("official64") / "log",
                                 config=LidarConfig(width=0.125))


def test_cli_import_official(hdl64_folder, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["lidar", "import-official", "--folder", str(hdl64_folder), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"imported {hdl64_folder} into {out}" in captured.out and "SSGV3-21 (width 0.125)" in captured.err
    assert (out / "model.json").exists() and (out / "config.yaml").exists()
    assert main(["lidar", "import-official", "--folder", str(hdl64_folder), "--out", str(out)]) == 2
    assert "already holds a model" in capsys.readouterr().err
    bad = Path(shutil.copytree(hdl64_folder, tmp_path / "bad"))
    (bad / "backbone").unlink()
    assert main(["lidar", "import-official", "--folder", str(bad), "--out", str(tmp_path / "r2")]) == 2
    assert "backbone: missing" in capsys.readouterr().err


@needs_kitti
def test_cli_eval_and_predict_of_an_imported_model_on_a_real_scan(hdl64_folder, tmp_path):
    run = tmp_path / "run"
    assert main(["lidar", "import-official", "--folder", str(hdl64_folder), "--out", str(run)]) == 0
    metrics = {}
    for name, spec in (("run", str(run)), ("official", f"official:{hdl64_folder}")):
        out = tmp_path / f"eval-{name}"
        assert main(["lidar", "eval", "--model", spec, "--data", str(KITTI), "--max-scans", "1", "--out",
                     str(out)]) == 0
        metrics[name] = json.loads((out / "metrics.json").read_text())
    n = len(read_scan(KITTI / "sequences" / "00" / "velodyne" / "000000.bin"))
    assert metrics["run"]["points"] == n and metrics["run"]["projection"] == {"height": 64, "width": 2048}
    for key in ("point", "point_knn", "pixel"):
        assert metrics["run"][key]["confusion"] == metrics["official"][key]["confusion"]
    scan = KITTI / "sequences" / "00" / "velodyne" / "000000.bin"
    assert main(["lidar", "predict", "--model", f"official:{hdl64_folder}", "--scans", str(scan), "--out",
                 str(tmp_path / "pred"), "--no-png"]) == 0
    assert len(list((tmp_path / "pred" / "sequences").rglob("*.label"))) == 1


def test_cli_model_official_prefix_errors_are_named(tmp_path, capsys):
    assert main(["lidar", "eval", "--model", f"official:{tmp_path / 'nowhere'}", "--data", str(tmp_path),
                 "--out", str(tmp_path / "e")]) == 2
    assert "no such folder" in capsys.readouterr().err
