"""Pure ML core of streamlearn: learners, blending, batch models, training, state codecs.

Nothing here imports Kafka or the Faust app; Redis appears only behind small store classes that
take a client built elsewhere.
"""
