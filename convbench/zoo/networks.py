"""The nine networks of the zoo: where the ``onnx`` wheel keeps them, and picking some by name.

The ``onnx`` package ships nine real CNN graphs as backend test data under
``onnx/backend/test/data/light/`` (their weights are ``ConstantOfShape``
placeholders; the graphs, and so every convolution's shape, are the real
ones). Nothing is downloaded: :func:`models_folder` finds the installed
package without importing it, and says which extra to install when it is
missing.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ..hints import did_you_mean

#: Where the graphs lie inside the installed ``onnx`` package.
LIGHT_FOLDER = ("backend", "test", "data", "light")
#: How to get them.
INSTALL_HINT = "pip install onnx, or pip install -e '.[peers]' (convbench's peers extra installs it)"


class ZooError(Exception):
    """The zoo cannot be built or read; the message says what is missing and how to fix it."""


@dataclass(frozen=True)
class Network:
    """One architecture of the zoo."""

    key: str  # the name used in --networks, layer names and the rows' credits
    file: str  # the ONNX file under LIGHT_FOLDER
    title: str  # how reports name it


#: The zoo, in the order reports list it (roughly by year, then family).
NETWORKS: tuple[Network, ...] = (
    Network("alexnet", "light_bvlc_alexnet.onnx", "AlexNet"),
    Network("zfnet512", "light_zfnet512.onnx", "ZFNet-512"),
    Network("vgg19", "light_vgg19.onnx", "VGG-19"),
    Network("inception_v1", "light_inception_v1.onnx", "Inception v1"),
    Network("inception_v2", "light_inception_v2.onnx", "Inception v2"),
    Network("resnet50", "light_resnet50.onnx", "ResNet-50"),
    Network("densenet121", "light_densenet121.onnx", "DenseNet-121"),
    Network("squeezenet", "light_squeezenet.onnx", "SqueezeNet"),
    Network("shufflenet", "light_shufflenet.onnx", "ShuffleNet"),
)
BY_KEY = {n.key: n for n in NETWORKS}


def title_of(key: str) -> str:
    """The report name of a network key (the key itself for one the zoo does not know)."""
    return BY_KEY[key].title if key in BY_KEY else key


def _folded(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def pick_networks(text: str | None) -> list[Network]:
    """``--networks``: comma-separated keys (any case; ``-``, ``_`` and spaces ignored, so
    ``VGG-19`` and ``vgg19`` both work), in the zoo's order; ``None`` or ``all``: every one."""
    if text is None or text.strip().lower() == "all":
        return list(NETWORKS)
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ZooError(f"--networks takes comma-separated names ({', '.join(BY_KEY)}) or 'all'; got {text!r}")
    folded = {_folded(n.key): n for n in NETWORKS} | {_folded(n.title): n for n in NETWORKS}
    picked = []
    for name in names:
        network = folded.get(_folded(name))
        if network is None:
            raise ZooError(f"--networks: unknown network {name!r}{did_you_mean(name.lower(), BY_KEY)} "
                           f"The zoo's networks: {', '.join(BY_KEY)}.")
        picked.append(network)
    return [n for n in NETWORKS if n in picked]


def models_folder() -> Path:
    """The folder of the nine ONNX files inside the installed ``onnx`` package."""
    try:
        spec = importlib.util.find_spec("onnx")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        raise ZooError("convbench zoo reads the nine networks the onnx package ships as test data, and onnx "
                       f"is not installed: {INSTALL_HINT}")
    folder = Path(spec.origin).parent.joinpath(*LIGHT_FOLDER)
    if not folder.is_dir():
        raise ZooError(f"the installed onnx package has no {'/'.join(LIGHT_FOLDER)} folder ({folder}): "
                       "its backend test data is missing (a stripped install?); reinstall it: "
                       f"{INSTALL_HINT}")
    return folder


def model_path(network: Network, folder: Path | None = None) -> Path:
    """The ONNX file of ``network``; :class:`ZooError` names it if it is missing."""
    path = (folder or models_folder()) / network.file
    if not path.is_file():
        raise ZooError(f"{network.title}: {path} is missing from the installed onnx package "
                       f"(another onnx version?); reinstall it: {INSTALL_HINT}")
    return path
