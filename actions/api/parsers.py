"""Request body parsing with a nesting limit.

Python's json module recurses per level and raises RecursionError (a 500 through DRF's
JSONParser) somewhere near depth 1,000; no legitimate body nests anywhere near that.
"""

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from actions.validators import json_depth

MAX_JSON_DEPTH = 64


class JSONParser(parsers.JSONParser):
    """DRF's JSONParser; a body nested deeper than MAX_JSON_DEPTH is a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            data = None
        else:
            if json_depth(data) <= MAX_JSON_DEPTH:
                return data
        raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.")
