"""Readers and writers for the three formats svit speaks: SVIT original, LLaVA-v1.5 and messages."""

FORMATS: tuple[str, ...] = ("svit", "llava", "messages")
