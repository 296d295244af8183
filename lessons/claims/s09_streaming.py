"""Section 9, Response streaming: decided from notebook 09's records.

TODO: the rules below are placeholders (always "not measured") until the notebook records
the numbers they read; each must be replaced by a real rule.
"""

from __future__ import annotations

from lessons.claims._rules import Missing, Records, Verdict, claim

NB = "09_streaming"


@claim('streaming-large-responses', section=9, notebook=NB,
       guide='Implement response streaming for large data: StreamingHttpResponse(generate()) with a sync generator',
       gives=("confirmed", "refuted", "depends"))
def streaming_large_responses(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for streaming-large-responses")


@claim('iterator-large-querysets', section=9, notebook=NB,
       guide='Use iterator() for large querysets: Item.objects.iterator(chunk_size=100)',
       gives=("confirmed", "refuted", "depends"))
def iterator_large_querysets(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for iterator-large-querysets")
