"""AudioSet in one place: its class table and ontology descriptions (vendored, CC BY-SA 4.0), the reader of its
released VGGish feature tfrecords, and their import into a dataset directory and an embedding store."""

from .classes import (
    NUM_CLASSES,
    AudioSetClass,
    audioset_classes,
    audioset_descriptions,
    audioset_display_names,
    build_class_table,
    class_by_name,
)

__all__ = ["NUM_CLASSES", "AudioSetClass", "audioset_classes", "audioset_descriptions", "audioset_display_names",
           "build_class_table", "class_by_name"]
