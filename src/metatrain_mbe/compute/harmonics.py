"""Spherical harmonics that stay differentiable without Python.

sphericart-torch (2.0.x) registers the autograd of its TorchScript operations
``sphericart_torch::spherical_harmonics`` and ``::solid_harmonics`` from Python
(``torch.library.register_autograd`` in ``sphericart/torch/register.py``); its
C++ library, the one engines load from the extensions folder (LAMMPS, or any
process that does not ``import sphericart.torch``), has none, so forces of a
SOAP-BPNN lose the gradient of the harmonics.

:func:`make_harmonics_differentiable` rewrites, in the graphs of a loaded
TorchScript module, every call ``Y = op(xyz, l_max)`` into the same op "with
hessians", whose values and derivatives are plain tensors, assembled as

    Y' = Y + Σ_a δ_a ∂_a Y + ½ Σ_ab δ_a δ_b ∂_a ∂_b Y,   δ = xyz − detach(xyz),

with Y and its derivatives detached. δ is zero, so Y' = Y, ∂Y'/∂xyz = ∂Y and
∂²Y'/∂xyz² = ∂²Y: first and second derivatives by ordinary autograd, whether
or not the op's own autograd is registered.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["HARMONICS_OPS", "make_harmonics_differentiable"]

#: sphericart operations whose autograd only exists when Python imports sphericart
HARMONICS_OPS = ("sphericart_torch::spherical_harmonics", "sphericart_torch::solid_harmonics")

_PATTERN = """
graph(%xyz, %l_max):
  %values = {op}(%xyz, %l_max)
  return (%values)"""

_REPLACEMENT = """
graph(%xyz, %l_max):
  %y : Tensor, %dy : Tensor, %ddy : Tensor = {op}_with_hessians(%xyz, %l_max)
  %one : int = prim::Constant[value=1]()
  %two : int = prim::Constant[value=2]()
  %last : int = prim::Constant[value=-1]()
  %half : float = prim::Constant[value=0.5]()
  %false : bool = prim::Constant[value=0]()
  %none : NoneType = prim::Constant()
  %fixed : Tensor = aten::detach(%xyz)
  %delta : Tensor = aten::sub(%xyz, %fixed, %one)
  %delta_a : Tensor = aten::unsqueeze(%delta, %last)
  %dy_fixed : Tensor = aten::detach(%dy)
  %linear_terms : Tensor = aten::mul(%delta_a, %dy_fixed)
  %axis_a : int[] = prim::ListConstruct(%one)
  %linear : Tensor = aten::sum(%linear_terms, %axis_a, %false, %none)
  %delta_a2 : Tensor = aten::unsqueeze(%delta_a, %two)
  %delta_b0 : Tensor = aten::unsqueeze(%delta, %one)
  %delta_b : Tensor = aten::unsqueeze(%delta_b0, %last)
  %ddy_fixed : Tensor = aten::detach(%ddy)
  %pair : Tensor = aten::mul(%delta_a2, %delta_b)
  %quadratic_terms : Tensor = aten::mul(%pair, %ddy_fixed)
  %axes_ab : int[] = prim::ListConstruct(%one, %two)
  %quadratic : Tensor = aten::sum(%quadratic_terms, %axes_ab, %false, %none)
  %y_fixed : Tensor = aten::detach(%y)
  %first : Tensor = aten::add(%y_fixed, %linear, %one)
  %values : Tensor = aten::add(%first, %quadratic, %half)
  return (%values)"""


def make_harmonics_differentiable(module: torch.jit.ScriptModule) -> int:
    """Rewrite in place every sphericart harmonics call of ``module`` (a loaded
    TorchScript module, all its submodules and methods); the sphericart
    library must be loaded. :return: the number of calls rewritten."""
    rewritten = 0
    for submodule in module.modules():
        compiled: Any = submodule._c  # the TorchScript module behind the Python one
        for name in compiled._method_names():
            graph = compiled._get_method(name).graph
            for op in HARMONICS_OPS:
                before = _count(graph, op)
                if before == 0:
                    continue
                torch._C._jit_pass_custom_pattern_based_rewrite_graph(
                    _PATTERN.format(op=op), _REPLACEMENT.format(op=op), graph
                )
                if _count(graph, op) != 0:
                    raise RuntimeError(f"could not rewrite every {op} call of {name}")
                rewritten += before
    return rewritten


def _count(graph: torch.Graph, kind: str) -> int:
    """Number of ``kind`` nodes in ``graph``, nested blocks included."""
    count = 0
    for node in graph.nodes():
        count += _count_node(node, kind)
    return count


def _count_node(node: torch.Node, kind: str) -> int:
    count = int(node.kind() == kind)
    for block in node.blocks():
        for inner in block.nodes():
            count += _count_node(inner, kind)
    return count
