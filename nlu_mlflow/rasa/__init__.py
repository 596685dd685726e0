"""Everything that touches Rasa: data loading, pipelines, training, evaluation, batched inference, fast
loading, plots, model archives and the Rasa HTTP client.

The only layer that imports ``rasa`` (and TensorFlow); Rasa's errors become ``InputError`` or this
layer's own exceptions here. May import ``decide``; never ``tracking``, ``workflow``, ``receiver`` or ``cli``.
"""
