"""Incident report drafts from the send log (issue 14): ``report`` builds the
facts, ``render`` writes them as Markdown or docx for a person to complete."""
