"""``streamlearn dashboard``: a live page of one deployment, read from Redis and the topics.

``history`` keeps bounded series (pure), ``timeline`` the alerts and model updates (pure),
``sampler`` reads the deployment, ``server`` serves the page and its JSON, ``service`` runs
them; ``page.html`` draws with uPlot (``static/``, vendored, MIT).
"""
