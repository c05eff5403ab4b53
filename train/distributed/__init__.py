"""Training on several processes and instances with torch.distributed (DDP).

``topology`` turns ``resourceconfig.json`` into ranks; ``agent`` is the per-host launcher (one
worker process per GPU, or ``processes_per_host`` on CPU); ``worker`` is what each process runs;
``runtime`` holds the process group, the failure watchdog and the collectives the training
engine uses (``Dist``, whose plain form is a one-process job).
"""
