"""Trainer tools: the inbox of misunderstood messages, labelling into data/nlu, data lint,
and model comparison — the open-source replacement for Rasa X's annotation inbox.

    python -m bot trainer inbox      collect from the tracker store, list what needs a label
    python -m bot trainer label …    label one inbox item (or --patch to export a diff)
    python -m bot trainer flush      write labels recorded but not yet in their data file
    python -m bot trainer lint       NLU data problems Rasa's validator does not see
    python -m bot trainer compare    per-intent F1 of a new model against the previous one
"""
