# Inputs of site "ams-dc2": what the plan cannot know (images, networks, accounts).
# None: the gpu_pool module takes everything from the plan.
