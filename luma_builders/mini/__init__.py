"""The embedded mini source: a small LUMA source in the published layout, written offline and deterministically
(`source`; its texts: `text`)."""
