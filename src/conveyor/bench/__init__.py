"""The side-by-side benchmark behind ``conveyor bench`` (needs the ``bench`` extra)."""
