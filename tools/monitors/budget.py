"""A judge model that stops asking once a window's budget is spent.

The call budget is enforced before the run starts (the sample is cut to fit, see scheduler);
tokens and money cannot be known before the calls, so this wrapper counts what each reply cost
and, once the budget is reached, declines further calls with ``DeferredCall``. The run then
leaves the remaining items unscored and returns normally (nothing is cancelled mid-call, so no
paid answer is thrown away), and the monitor records the window as stopped by its budget.
Calls already in flight when the limit is reached still finish: the overshoot is at most
``concurrency`` calls, and the README says so.
"""

from __future__ import annotations

from tools.judges.ports import DeferredCall, JudgeModel, JudgePrompt, ModelReply
from tools.monitors.ports import Spend
from tools.monitors.specs import Budget


class BudgetedModel:
    """Wraps a ``JudgeModel``; ``spent`` starts from what earlier attempts of the window paid."""

    def __init__(self, model: JudgeModel, budget: Budget, spent: Spend) -> None:
        self.model = model
        self.name = model.name
        self.price_in_per_mtok = model.price_in_per_mtok
        self.price_out_per_mtok = model.price_out_per_mtok
        self.budget = budget
        self.spent = spent.model_copy()
        self.declined = 0

    def exhausted(self) -> str | None:
        """Which limit is reached, in words, or None."""
        b, s = self.budget, self.spent
        if b.max_tokens is not None and s.input_tokens + s.output_tokens >= b.max_tokens:
            return f"token budget {b.max_tokens} reached ({s.input_tokens + s.output_tokens} spent)"
        if b.max_usd is not None and s.usd >= b.max_usd:
            return f"budget ${b.max_usd:g} reached (${s.usd:.4f} spent)"
        if b.max_judge_calls is not None and s.calls >= b.max_judge_calls:
            return f"call budget {b.max_judge_calls} reached"
        return None

    async def grade(self, prompt: JudgePrompt, *, max_tokens: int) -> ModelReply:
        if self.exhausted():
            self.declined += 1
            raise DeferredCall("window budget spent")
        self.spent.calls += 1
        reply = await self.model.grade(prompt, max_tokens=max_tokens)
        self.spent.input_tokens += reply.input_tokens or 0
        self.spent.output_tokens += reply.output_tokens or 0
        if self.price_in_per_mtok is not None and self.price_out_per_mtok is not None:
            self.spent.usd += ((reply.input_tokens or 0) * self.price_in_per_mtok
                               + (reply.output_tokens or 0) * self.price_out_per_mtok) / 1e6
        return reply
