"""Where the repository's non-Python parts live (the package is installed editable)."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "templates"
FIRMWARE = REPO / "firmware"
DOCS = REPO / "docs"
