"""The lessons' exercise checks switch library functions off and put them back."""

import types

import pytest

from tinysparse.exercises import switched_off


class Owner:
    @staticmethod
    def answer():
        return 42


def test_switched_off_refuses_inside_and_restores_afterwards_even_after_an_error():
    module = types.SimpleNamespace(answer=lambda: 42)
    with pytest.raises(ValueError), switched_off(module, "answer"):
        with pytest.raises(RuntimeError, match="write it yourself: answer"):
            module.answer()
        raise ValueError("the student's code failed")
    assert module.answer() == 42
    with switched_off(Owner, "answer"):
        with pytest.raises(RuntimeError):
            Owner.answer()
    assert Owner.answer() == 42  # a staticmethod comes back as one
