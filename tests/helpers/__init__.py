"""What many tests share: the project's paths (here), real servers (``servers``), the CLI argument lists
(``cli``) and a comparison of nested results within float tolerances (``compare``)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PIZZA = ROOT / "data" / "pizza"
PIZZA_PROJECT = ROOT / "data" / "pizza-assistant"
CONFIGS = ROOT / "configs"
TEST_DATA = ROOT / "tests" / "data"
SHARED = ROOT.parent / "shared"
SHARED_DATASETS = SHARED / "datasets"
SHARED_PROJECTS = SHARED / "projects"
