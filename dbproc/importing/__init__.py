"""Migration from spacepy's dbprocessing (``dbproc import-dbprocessing``, contract §16).

``legacy`` reads the old database by reflection, ``translate`` makes the mission file,
``files`` registers the files in place, ``importer`` runs the steps, ``legacy_inspector``
runs old inspectors under dbproc, ``report`` lists what could not be translated.
"""
