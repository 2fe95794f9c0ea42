"""The README's config reference is the schema's: every field, with its help string."""
from conftest import REPO
from pet_config import reference
from pet_config.schema import PipelineConfig


def test_readme_config_reference_is_up_to_date():
    text = (REPO / "README.md").read_text()
    assert reference.render_into(text) == text, "run python -m pet_config.reference"


def test_every_field_has_a_help_string():
    missing = [key for key, _, _, help_text in reference.rows(PipelineConfig) if not help_text.strip()]
    assert missing == []
