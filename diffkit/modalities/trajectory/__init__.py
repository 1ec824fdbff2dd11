"""Trajectories: PointMaze planning by goal inpainting (Diffuser, Janner et al. 2022), scored in closed loop."""
