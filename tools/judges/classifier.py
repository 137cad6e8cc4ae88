"""Classifier judges: a small text model fitted on human labels for one criterion.

TF-IDF word n-grams over the item's input, output and tool calls, then a class-balanced logistic
regression. Training reports the cross-validated Matthews correlation with the labels (the
seed's gate metric) before anything is saved. The fitted model is stored as plain numbers in
the judge spec (vocabulary, idf, coefficients), so loading a judge never unpickles anything.

scikit-learn is imported lazily: it is slow to import and only training and scoring need it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from tools.judges import registry
from tools.errors import InvalidInputError
from tools.judges.ports import Item, ItemSource, JudgeStore, Verdict
from tools.judges.specs import ClassifierModel, ClassifierSpec, ClassifierTraining, LlmField
from tools.judges.llm import field_value

MIN_LABELS = 10
MIN_PER_CLASS = 3
MAX_FEATURES = 5000
_CUT = 4000

Fields = Annotated[list[LlmField], Field(min_length=1, description=(
    "Item text the features come from: input, output, retrieved_context, tool_calls, expectations "
    "(default input, output, tool_calls)."))]


class TrainClassifierJudgeInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: registry.JudgeName
    criterion: registry.Criterion
    fields: Fields = Field(default_factory=lambda: ["input", "output", "tool_calls"])
    description: registry.Description = None


class TrainClassifierJudgeResult(BaseModel):
    judge: registry.JudgeVersion
    created: bool = Field(description="False when the same labels produced the same model (no new version).")
    labels_used: int
    passes: int
    fails: int
    ignored_labels: int = Field(description="Latest labels whose value is not 'pass' or 'fail'.")
    cv_mcc: float = Field(description="Cross-validated MCC with the human labels: >= 0.6 can gate, 0.4-0.6 is a "
                                      "signal, < 0.4 means label more or use another judge.")
    cv_accuracy: float
    folds: int
    advice: str


def item_text(item: Item, fields: Sequence[str]) -> str:
    parts = []
    for field in fields:
        value = field_value(item, field)
        if value:
            parts.append(f"{field}: {value[:_CUT]}")
    return "\n".join(parts)


def _vectorizer(ngram_max: int, sublinear_tf: bool, max_features: int | None = None) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(ngram_range=(1, ngram_max), sublinear_tf=sublinear_tf, max_features=max_features)


def fit(texts: list[str], labels: list[str], *, now_ms: int) -> tuple[ClassifierModel, ClassifierTraining]:
    """Cross-validate, then fit on everything; raise if the labels cannot support a classifier."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, matthews_corrcoef
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline

    y = np.array([1 if v == "pass" else 0 for v in labels])
    passes, fails = int(y.sum()), int(len(y) - y.sum())
    if len(y) < MIN_LABELS or min(passes, fails) < MIN_PER_CLASS:
        raise InvalidInputError(
            f"Not enough human labels to train: {passes} pass and {fails} fail (need at least {MIN_LABELS} in "
            f"total and {MIN_PER_CLASS} of each). Label more traces for this criterion (label_trace), then retry.")
    folds = min(5, passes, fails)

    def pipeline() -> Any:
        return make_pipeline(_vectorizer(2, True, MAX_FEATURES),
                             LogisticRegression(class_weight="balanced", max_iter=2000))

    predicted = cross_val_predict(pipeline(), texts, y, cv=StratifiedKFold(folds, shuffle=True, random_state=0))
    model = pipeline().fit(texts, y)
    vectorizer, logreg = model[0], model[1]
    vocabulary = [""] * len(vectorizer.vocabulary_)
    for term, index in vectorizer.vocabulary_.items():
        vocabulary[index] = term
    fitted = ClassifierModel(ngram_max=2, sublinear_tf=True, vocabulary=vocabulary,
                             idf=[round(float(v), 8) for v in vectorizer.idf_],
                             coef=[round(float(v), 8) for v in logreg.coef_[0]],
                             intercept=round(float(logreg.intercept_[0]), 8))
    training = ClassifierTraining(labels=len(y), passes=passes, fails=fails, folds=folds,
                                  cv_mcc=round(float(matthews_corrcoef(y, predicted)), 4),
                                  cv_accuracy=round(float(accuracy_score(y, predicted)), 4), trained_at_ms=now_ms)
    return fitted, training


def predict(spec: ClassifierSpec, items: Sequence[Item]) -> list[Verdict]:
    """P(pass) per item from the stored numbers; 'pass' when it reaches the threshold."""
    import numpy as np

    if not items:
        return []
    m = spec.model
    vectorizer = _vectorizer(m.ngram_max, m.sublinear_tf)
    vectorizer.vocabulary_ = {term: i for i, term in enumerate(m.vocabulary)}
    vectorizer.idf_ = np.asarray(m.idf)
    features = vectorizer.transform([item_text(item, spec.fields) for item in items])
    logits = features @ np.asarray(m.coef) + m.intercept
    out = []
    for p in 1.0 / (1.0 + np.exp(-logits)):
        p = round(float(p), 6)
        label = "pass" if p >= spec.pass_threshold else "fail"
        out.append(Verdict(label=label, score=p, reason=f"classifier P(pass) = {p:.2f} "
                                                       f"(threshold {spec.pass_threshold:g})"))
    return out


def train_classifier_judge(store: JudgeStore, source: ItemSource, inp: TrainClassifierJudgeInput, *,
                           now_ms: int) -> TrainClassifierJudgeResult:
    """Fit on the latest human label per trace for ``criterion`` and save it as a judge version."""
    registry.check_name(inp.name)
    labeled = source.labeled_items(inp.criterion)
    usable = [(item, value) for item, value in labeled if value in ("pass", "fail")]
    if not labeled:
        raise InvalidInputError(
            f"No human labels for criterion {inp.criterion!r}. Label traces first (label_trace with this "
            "criterion and value 'pass' or 'fail'); describe_store lists the criteria that have labels.")
    texts = [item_text(item, inp.fields) for item, _ in usable]
    fitted, training = fit(texts, [v for _, v in usable], now_ms=now_ms)
    spec = ClassifierSpec(fields=list(inp.fields), model=fitted,
                          training=training.model_copy(update={"trained_at_ms": 0}))
    saved = registry.store_version(store, name=inp.name, criterion=inp.criterion, spec=spec,
                                   description=inp.description, now_ms=now_ms)
    mcc = training.cv_mcc
    advice = ("MCC >= 0.6: reliable enough to gate releases." if mcc >= 0.6 else
              "MCC 0.4-0.6: use as a signal, not a gate; add labels or split the criterion." if mcc >= 0.4 else
              "MCC < 0.4: this classifier does not track the labels; label more or use a rule/LLM judge.")
    return TrainClassifierJudgeResult(
        judge=saved.judge, created=saved.created, labels_used=training.labels, passes=training.passes,
        fails=training.fails, ignored_labels=len(labeled) - len(usable), cv_mcc=mcc,
        cv_accuracy=training.cv_accuracy, folds=training.folds, advice=advice)
