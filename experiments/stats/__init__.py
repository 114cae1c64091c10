"""Pure statistics for experiment reports: no Django, sufficient statistics in, results out.

Every function takes sufficient statistics (n, sum, sum of squares; n, successes; bucket
counts), documents its formula, uses ``scipy.stats`` for distributions, and raises
:class:`StatsInputError` (a ``ValueError``) for bad input. Modules:

- ``summaries``: :class:`MeanStats`, :class:`ProportionStats`;
- ``means``: Welch's t-test, relative lift (delta method);
- ``proportions``: Wilson / Clopper-Pearson / Newcombe intervals, z and Fisher tests;
- ``multiple``: Holm-Bonferroni; ``srm``: sample-ratio mismatch (chi-square);
- ``sequential``: confidence sequences and always-valid p-values;
- ``noninferiority``: guardrail tests with margins;
- ``paired``: paired t and Wilcoxon for shadow pairs;
- ``quantiles`` / ``histograms``: latency p95 and its interval, fixed histogram buckets;
- ``power``: sample size, power, days to decision.
"""

from experiments.stats.errors import StatsInputError
from experiments.stats.histograms import (
    CONFIDENCE_HIST_EDGES,
    CONFIDENCE_HIST_SIZE,
    LATENCY_HIST_EDGES_MS,
    LATENCY_HIST_SIZE,
)
from experiments.stats.means import relative_difference, welch_t_test
from experiments.stats.multiple import holm_bonferroni
from experiments.stats.noninferiority import (
    quantile_ratio_noninferiority,
    rate_rise_noninferiority,
    relative_mean_noninferiority,
)
from experiments.stats.paired import paired_t_test, wilcoxon_signed_rank
from experiments.stats.power import days_to_decision, power_at, sample_size_per_arm
from experiments.stats.proportions import (
    clopper_pearson_interval,
    rate_interval,
    two_proportion_test,
    wilson_interval,
)
from experiments.stats.quantiles import histogram_quantile_ci, quantile_ci
from experiments.stats.sequential import confidence_sequence
from experiments.stats.srm import srm_test
from experiments.stats.summaries import MeanStats, ProportionStats

__all__ = [
    "CONFIDENCE_HIST_EDGES",
    "CONFIDENCE_HIST_SIZE",
    "LATENCY_HIST_EDGES_MS",
    "LATENCY_HIST_SIZE",
    "MeanStats",
    "ProportionStats",
    "StatsInputError",
    "clopper_pearson_interval",
    "confidence_sequence",
    "days_to_decision",
    "histogram_quantile_ci",
    "holm_bonferroni",
    "paired_t_test",
    "power_at",
    "quantile_ci",
    "quantile_ratio_noninferiority",
    "rate_interval",
    "rate_rise_noninferiority",
    "relative_difference",
    "relative_mean_noninferiority",
    "sample_size_per_arm",
    "srm_test",
    "two_proportion_test",
    "welch_t_test",
    "wilcoxon_signed_rank",
    "wilson_interval",
]
