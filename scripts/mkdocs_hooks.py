"""mkdocs hook: the site's home page is README.md, its links made relative to docs/.

The README is generated (scripts/build_readme.py) and links to docs/<page>.md, so the
site shows the same page instead of a second copy that could drift.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

README = Path(__file__).resolve().parent.parent / "README.md"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    text = README.read_text().replace("](docs/", "](")
    files.append(File.generated(config, "index.md", content=text))
    return files
