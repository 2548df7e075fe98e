# Inputs of site "fra-dc1": what the plan cannot know (images, networks, accounts).
# None: the gpu_pool module takes everything from the plan.
