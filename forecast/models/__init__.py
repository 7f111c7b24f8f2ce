"""Networks: pure ``nn.Module``s mapping ``[B, T_in, C, H, W]`` to ``[B, T_out, C, H, W]``."""
