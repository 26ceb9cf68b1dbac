"""The paths that run a chain's step, one module each (:class:`descentlab.optim.contract.Path`).

- :mod:`.reference`: one tensor at a time, the specification; the lazy path for sparse gradients;
- :mod:`.foreach`: the same chain on lists of tensors (``torch._foreach_*``);
- :mod:`.fused`: one generated kernel over flat buffers, traced from the chain (:mod:`.trace`)
  and compiled by :mod:`.numba_kernels` on the CPU or :mod:`.triton_kernels` on CUDA;
- :mod:`.table`: the same kernel over the user's own tensors through a table of their addresses,
  for groups whose storage someone else holds;
- :mod:`.base`: what they share (gradients, step count and learning rate, real operands).
"""
