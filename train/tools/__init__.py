"""Dataset tools: ``python -m train.tools {pack,index,split,rewrite,create-manifest,stats}``."""
