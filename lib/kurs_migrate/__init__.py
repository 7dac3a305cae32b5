"""kurs_migrate: find a Runa project's calls to external rate APIs and point them at Kurs."""
