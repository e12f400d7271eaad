"""The report's Methods text: written from the settings a run and its explanation actually used (config.toml,
settings.json, manifest.json), with software versions and references, ready to paste into a paper."""

from __future__ import annotations

import math
import platform
from dataclasses import dataclass
from importlib import metadata

from ..folder import ReportInputs, load_inputs

__all__ = ["Methods", "build_methods", "software_versions", "REFERENCES"]

#: Reference list entries by citation key: (in-text form, full reference).
REFERENCES = {
    "migtrans": (
        "Shaik et al., 2024",
        "Shaik NS, Cherukuri TK, Calhoun VD, Ye DH. Multi-modal imaging genomics transformer: attentive "
        "integration of imaging with genomic biomarkers for schizophrenia classification. arXiv:2407.19385, "
        "2024.",
    ),
    "ig": (
        "Sundararajan et al., 2017",
        "Sundararajan M, Taly A, Yan Q. Axiomatic attribution for deep networks. Proceedings of the 34th "
        "International Conference on Machine Learning (ICML), PMLR 70:3319-3328, 2017.",
    ),
    "captum": (
        "Kokhlikyan et al., 2020",
        "Kokhlikyan N, Miglani V, Martin M, Wang E, Alsallakh B, Reynolds J, Melnikov A, Kliushkina N, "
        "Araya C, Yan S, Reblitz-Richardson O. Captum: a unified and generic model interpretability library "
        "for PyTorch. arXiv:2009.07896, 2020.",
    ),
    "rollout": (
        "Abnar & Zuidema, 2020",
        "Abnar S, Zuidema W. Quantifying attention flow in transformers. Proceedings of the 58th Annual "
        "Meeting of the Association for Computational Linguistics (ACL), 4190-4197, 2020.",
    ),
    "chefer": (
        "Chefer et al., 2021",
        "Chefer H, Gur S, Wolf L. Generic attention-model explainability for interpreting bi-modal and "
        "encoder-decoder transformers. Proceedings of the IEEE/CVF International Conference on Computer "
        "Vision (ICCV), 397-406, 2021.",
    ),
    "phipson": (
        "Phipson & Smyth, 2010",
        "Phipson B, Smyth GK. Permutation p-values should never be zero: calculating exact p-values when "
        "permutations are randomly drawn. Statistical Applications in Genetics and Molecular Biology "
        "9(1):39, 2010.",
    ),
    "altmann": (
        "Altmann et al., 2010",
        "Altmann A, Tolo\u015fi L, Sander O, Lengauer T. Permutation importance: a corrected feature importance "
        "measure. Bioinformatics 26(10):1340-1347, 2010.",
    ),
    "welch": (
        "Welch, 1947",
        "Welch BL. The generalization of 'Student's' problem when several different population variances are "
        "involved. Biometrika 34(1-2):28-35, 1947.",
    ),
    "maxt": (
        "Westfall & Young, 1993",
        "Westfall PH, Young SS. Resampling-Based Multiple Testing: Examples and Methods for p-Value "
        "Adjustment. New York: Wiley, 1993.",
    ),
    "bh": (
        "Benjamini & Hochberg, 1995",
        "Benjamini Y, Hochberg Y. Controlling the false discovery rate: a practical and powerful approach to "
        "multiple testing. Journal of the Royal Statistical Society, Series B 57(1):289-300, 1995.",
    ),
    "gc": (
        "Devlin & Roeder, 1999",
        "Devlin B, Roeder K. Genomic control for association studies. Biometrics 55(4):997-1004, 1999.",
    ),
    "nilearn": (
        "Abraham et al., 2014",
        "Abraham A, Pedregosa F, Eickenberg M, Gervais P, Mueller A, Kossaifi J, Gramfort A, Thirion B, "
        "Varoquaux G. Machine learning for neuroimaging with scikit-learn. Frontiers in Neuroinformatics "
        "8:14, 2014.",
    ),
    "aal": (
        "Tzourio-Mazoyer et al., 2002",
        "Tzourio-Mazoyer N, Landeau B, Papathanassiou D, Crivello F, Etard O, Delcroix N, Mazoyer B, Joliot M. "
        "Automated anatomical labeling of activations in SPM using a macroscopic anatomical parcellation of the "
        "MNI MRI single-subject brain. NeuroImage 15(1):273-289, 2002.",
    ),
    "gencode": (
        "Frankish et al., 2019",
        "Frankish A, Diekhans M, Ferreira AM, et al. GENCODE reference annotation for the human and mouse "
        "genomes. Nucleic Acids Research 47(D1):D766-D773, 2019.",
    ),
}

# Distributions whose versions the Methods name, in the order they are named.
_PACKAGES = (
    "migtrans",
    "torch",
    "captum",
    "numpy",
    "scipy",
    "pandas",
    "statsmodels",
    "scikit-learn",
    "nilearn",
    "nibabel",
)
_DISPLAY = {
    "torch": "PyTorch",
    "captum": "Captum",
    "numpy": "NumPy",
    "scipy": "SciPy",
    "pandas": "pandas",
    "statsmodels": "statsmodels",
    "scikit-learn": "scikit-learn",
    "nilearn": "nilearn",
    "nibabel": "NiBabel",
    "migtrans": "migtrans",
    "python": "Python",
}
_MODALITY_NAMES = {
    "snp": "genotypes (SNP dosages)",
    "fnc": "functional network connectivity (FNC)",
    "smri": "structural MRI (gray-matter maps)",
}
_FEATURE_UNITS = {
    "snps": "SNP",
    "loci": "locus",
    "regions": "atlas region",
    "connections": "FNC edge",
    "nodes": "FNC node",
}


@dataclass(frozen=True)
class Methods:
    """The Methods text of a report.

    Attributes
    ----------
    paragraphs : tuple of str
        Plain text, citations in author-year form.
    references : tuple of str
        The works cited, in order of first citation.
    versions : dict of str -> dict
        Per package: ``{"run": version recorded in manifest.json or None, "now": installed version or None}``.
    """

    paragraphs: tuple
    references: tuple
    versions: dict

    @property
    def text(self) -> str:
        """Paragraphs and the reference list as one plain-text block."""
        refs = "\n".join(f"- {r}" for r in self.references)
        return "\n\n".join(self.paragraphs) + ("\n\nReferences\n" + refs if refs else "")


def software_versions(manifest: dict | None = None) -> dict:
    """Versions of Python and the packages the analysis depends on.

    Parameters
    ----------
    manifest : dict, optional
        A run's ``manifest.json``; its ``versions`` are reported as the training run's.

    Returns
    -------
    dict of str -> dict
        ``{"python": {"run": "3.11.7", "now": "3.11.7"}, "torch": {...}, ...}``; a version not known is None.
    """
    recorded = (manifest or {}).get("versions", {}) or {}
    out = {"python": {"run": recorded.get("python"), "now": platform.python_version()}}
    for name in _PACKAGES:
        try:
            now = metadata.version(name)
        except metadata.PackageNotFoundError:
            now = None
        out[name] = {"run": recorded.get(name), "now": now}
    return out


class _Citations:
    """Cite by key, remembering the order of first use for the reference list."""

    def __init__(self):
        self.keys: list[str] = []

    def __call__(self, *keys: str, note: str = "") -> str:
        for key in keys:
            if key not in self.keys:
                self.keys.append(key)
        return "(" + (f"{note}; " if note else "") + "; ".join(REFERENCES[k][0] for k in keys) + ")"


def _num(value) -> str:
    """A setting as it should read in prose: integers without a decimal point, floats in short form."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e6:
        return str(int(value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _count(n, noun: str) -> str:
    return f"{_num(n)} {noun}" + ("" if n == 1 else "s")


def _join(items) -> str:
    items = [str(i) for i in items]
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _cohort_sentence(inputs: ReportInputs) -> str:
    pred = inputs.predictions if inputs.predictions is not None else inputs.tables.get("subjects")
    if pred is None or "label" not in pred:
        return ""
    n = len(pred)
    cases = int((pred["label"] == 1).sum())
    pos_name = neg_name = ""
    if "label_name" in pred:
        pos = pred.loc[pred["label"] == 1, "label_name"]
        neg = pred.loc[pred["label"] == 0, "label_name"]
        if len(pos) and len(neg):
            pos_name, neg_name = f" ({pos.iloc[0]})", f" ({neg.iloc[0]})"
    return f"The cohort comprised {n} subjects: {cases} cases{pos_name} and {n - cases} controls{neg_name}."


def _model_sentences(inputs: ReportInputs, cite) -> list[str]:
    train, model = inputs.train, inputs.model
    kind = train.get("model", "migtrans")
    modalities = model.get("modalities") or train.get("modalities") or []
    mods = _join(_MODALITY_NAMES.get(m, m) for m in modalities)
    if kind != "migtrans":
        return [f"A {kind} baseline classifier was trained on {mods}."]
    out = [
        f"We classified subjects with MIGTrans {cite('migtrans')}, a multi-modal transformer, in our "
        f"implementation (migtrans), using {mods}."
    ]
    if model:
        parts = [
            f"tokens of width d_model = {_num(model.get('d_model'))}",
            f"{_num(model.get('n_heads'))} attention heads",
            f"feed-forward width {_num(model.get('ffn_mult'))} x d_model",
            f"dropout {_num(model.get('dropout'))}",
        ]
        out.append("The network used " + _join(parts) + ".")
        enc = []
        if "snp" in modalities:
            if model.get("snp_encoder", "locus") == "locus":
                enc.append(
                    f"the genomic encoder made one token per locus (contiguous windows of "
                    f"{_num(train.get('window_kb'))} kb with at most {_num(train.get('max_snps_per_locus'))} "
                    f"SNPs, each projected to {_num(model.get('locus_hidden'))} units)"
                )
            else:
                enc.append(
                    f"the genomic encoder was a dense MLP ({_num(model.get('snp_mlp_hidden'))} hidden units, "
                    f"{_num(model.get('snp_mlp_tokens'))} tokens)"
                )
        if "fnc" in modalities:
            enc.append(
                f"the connectome encoder made one token per node from its FNC row "
                f"({model.get('fnc_projection', 'shared')} projection)"
            )
        if "smri" in modalities:
            channels = model.get("smri_cnn_channels") or []
            enc.append(
                f"the sMRI encoder ran a 2D CNN (channels {', '.join(map(str, channels))}) over slices along "
                f"axis {_num(model.get('smri_slice_axis'))} after {_num(model.get('smri_downsample'))}-fold "
                f"average pooling, followed by a bidirectional {str(model.get('smri_rnn', 'gru')).upper()} and "
                f"{_count(model.get('n_slice_attention_layers'), 'slice self-attention layer')}"
            )
        if enc:
            out.append(enc[0][0].upper() + "; ".join(enc)[1:] + ".")
        steps = model.get("cross_attention") or []
        if steps:
            out.append(
                f"Modalities were fused by stepwise cross-attention ({', '.join(steps)}; q<-k: the tokens of q "
                f"attend to those of k) and {_count(model.get('n_fusion_layers'), 'self-attention layer')} over "
                f"the [CLS] and all modality tokens."
            )
        if model.get("modality_reads"):
            out.append(
                "The [CLS] token started from the sum of one linear read of each modality's whole input "
                "(every SNP, FNC entry and average-pooled voxel), so that weak evidence spread over many "
                "features is summed rather than averaged by attention; attention rollout does not see this "
                "path, integrated gradients do."
            )
        if model.get("linear_prior"):
            out.append(
                "An elastic-net logistic regression, fitted on each fold's training subjects (l1 ratio and "
                "penalty chosen by inner 5-fold cross-validation), added its log-odds to the network's; the "
                "network's head started at zero and it was trained on the elastic net's inner out-of-fold "
                "log-odds of its training subjects, so that it learned what the linear model missed. "
                "Integrated gradients include this linear part; attention rollout does not."
            )
            if (train or {}).get("network_weight") == "validation":
                out.append(
                    "The network's log-odds were then weighted by a factor in [0, 1], fitted in each fold by "
                    "maximum likelihood on held-out validation subjects the network had not trained on, with "
                    "the elastic net's inner out-of-fold log-odds for them (stacking), so that a network adding "
                    "only noise to the linear model counted little; fold.json records each fold's factor."
                )
    return out


def _training_sentences(inputs: ReportInputs) -> list[str]:
    train = inputs.train
    if not train:
        return []
    site = (inputs.cohort.get("phenotypes", {}) or {}).get("site_column")
    strata = f"diagnosis x site ({site})" if site else "diagnosis"
    k = _num(train.get("n_folds"))
    explain_share = float(train.get("explain_fraction", 0) or 0)
    if explain_share:
        out = [
            f"A stratified {_num(round(100 * explain_share, 1))}% of subjects (diagnosis x site), the explanation "
            f"set, was held out of all training. Performance was estimated on the other subjects by {k}-fold "
            f"cross-validation stratified by {strata}, with out-of-fold predictions; the explanation set was "
            f"scored by the mean log-odds of the {k} fold models."
        ]
    elif train.get("fold_by") == "site":
        out = [
            f"Performance was estimated by leave-one-site-out cross-validation ({k} sites, each held out in turn "
            f"and reported on its own); all predictions and explanations are out of fold."
        ]
    else:
        out = [
            f"Performance was estimated by {k}-fold cross-validation stratified by {strata}; "
            f"all predictions and explanations are out of fold."
        ]
    out += _adjustment_sentences(inputs)
    if train.get("model", "migtrans") == "migtrans":
        share = _num(round(100 * float(train.get("val_fraction", 0)), 1))
        select = train.get("select", "val_loss")
        if select == "last" and (inputs.config.get("run") or {}).get("validation_split") is False:
            held = (
                f"Every fold trained on its whole training share for a fixed budget of "
                f"{_num(train.get('epochs'))} epochs and kept the last epoch's weights"
            )
        elif select == "last" and train.get("network_weight") == "validation" and inputs.model.get("linear_prior"):
            held = (
                f"In each training fold, {share}% of subjects were held out (stratified) to weigh the network "
                f"against the elastic net (above); every fold trained for a fixed budget of "
                f"{_num(train.get('epochs'))} epochs and kept the last epoch's weights"
            )
        elif select == "last":
            held = (
                f"In each training fold, {share}% of subjects were held out (stratified) and only monitored; "
                f"every fold trained for a fixed budget of {_num(train.get('epochs'))} epochs and kept the last "
                f"epoch's weights"
            )
        else:
            criterion = "validation ROC AUC" if select == "val_auc" else "validation loss"
            held = (
                f"In each training fold, {share}% of subjects were held out (stratified) for early stopping on "
                f"the {criterion} (patience {_num(train.get('patience'))} epochs, at most "
                f"{_num(train.get('epochs'))} epochs)"
            )
        sentence = (
            held + ". We used AdamW "
            f"(peak learning rate {_num(train.get('lr'))} after {_num(train.get('warmup_epochs'))} warm-up "
            f"epochs, then cosine decay; weight decay {_num(train.get('weight_decay'))}), batch size "
            f"{_num(train.get('batch_size'))} and label smoothing {_num(train.get('label_smoothing'))}"
        )
        if train.get("l2"):
            sentence += f", with an L2 penalty of {_num(train.get('l2'))} on weight matrices"
        out.append(sentence + ".")
        if train.get("read_sparsity") and (inputs.model or {}).get("modality_reads"):
            out.append(
                f"The modality reads selected their input features: after every optimizer step, a group-lasso "
                f"proximal step shrank each feature's column of read weights by "
                f"{_num(train.get('read_sparsity'))} x learning rate x sqrt(model width) in norm, setting "
                f"to zero the features whose gradients did not keep a consistent sign."
            )
    if train.get("seed") is not None:
        out.append(f"One seed ({_num(train.get('seed'))}) fixed folds, initialisation and batch order.")
    return out


def _attribution_sentences(inputs: ReportInputs, cite) -> list[str]:
    s = inputs.settings
    if not s:
        return []
    baseline = {
        "mean": "the training fold's mean of each input",
        "held_out_mean": "the mean input of the held-out subjects each fold model explained (label-free)",
        "zero": "zero input (zero dosage, connectivity and gray matter)",
    }.get(s.get("baseline"), str(s.get("baseline")))
    quad = {"gausslegendre": "Gauss-Legendre quadrature", "riemann_trapezoid": "the trapezoid rule"}.get(
        s.get("quadrature"), str(s.get("quadrature"))
    )
    out = []
    if s.get("external_cohort_name"):
        out.append(
            f"The {_num(s.get('n_explained'))} subjects of the external cohort {s['external_cohort_name']}, none "
            f"of whom took part in training, were explained by the ensemble of the {_num(s.get('folds'))} fold "
            f"models: each attribution is the mean of the models' attributions, which is the attribution of "
            f"their mean log-odds. " + _external_alignment_sentence(s.get("external_alignment") or {})
        )
    elif s.get("out_of_fold", True):
        out.append("Every subject was explained by the fold model that had not been trained on it.")
    else:
        out.append(
            f"The {_num(s.get('n_explained'))} subjects of the explanation set, whose labels no model had "
            f"seen, were explained by the ensemble of the {_num(s.get('folds'))} fold models: each "
            f"attribution is the mean of the models' attributions, which is the attribution of their mean "
            f"log-odds."
        )
    out.append(
        f"Integrated gradients {cite('ig')}, computed with Captum {cite('captum')}, attributed the "
        f"{s.get('target', 'positive-class log-odds')} to all inputs at once along the straight path from a "
        f"baseline equal to {baseline}, with {_num(s.get('n_steps'))} points of {quad}."
    )
    if s.get("smoothgrad_samples"):
        out.append(
            f"Attributions were averaged over {_num(s['smoothgrad_samples'])} noisy copies of each input (SmoothGrad)."
        )
    if s.get("ig_relative_delta_median") is not None:
        out.append(
            f"The completeness error (sum of attributions minus the change in output, relative to that change) "
            f"had a median of {s['ig_relative_delta_median']:.2g} and a maximum of "
            f"{s['ig_relative_delta_max']:.2g} across subjects."
        )
    if s.get("rollout_method"):
        how = (
            "gradient-weighted attention maps (positive part of gradient x attention, averaged over heads)"
            if s["rollout_method"] == "gradient"
            else "attention maps averaged over heads"
        )
        out.append(
            f"Token relevance and each modality's share came from attention rollout {cite('rollout')} "
            f"through every attention layer, with the generic self- and cross-attention relevance rules "
            f"{cite('chefer')} extended to three token streams, using {how}."
        )
    tables = inputs.tables
    parts = []
    if "connections" in tables and s.get("fnc_edge_attribution"):
        parts.append(f"an FNC edge's attribution was the {s['fnc_edge_attribution']}")
    if "nodes" in tables:
        parts.append("a node's the sum over its edges")
    if "loci" in tables:
        parts.append("a locus's the sum over its SNPs")
    if "regions" in tables:
        parts.append(f"a region's the {s.get('region_attribution') or 'mean over its voxels'}")
    if parts:
        text = "; ".join(parts)
        out.append(f"{text[0].upper()}{text[1:]} (integrated gradients are additive).")
    return out


def _statistic_id(settings) -> str | None:
    """The test statistic of the tables, as settings.json names it; reports from before ``statistic_id``
    are recognised by the wording their settings used."""
    if settings.get("statistic_id"):
        return settings["statistic_id"]
    statistic = str(settings.get("statistic", ""))
    legacy = {"contrast within strata": "standardised_contrast", "two-sample t (pooled variance)": "pooled_t"}
    return next((key for text, key in legacy.items() if statistic.startswith(text)), None)


def _statistics_sentences(inputs: ReportInputs, cite) -> list[str]:
    s = inputs.settings
    B = s.get("n_permutations")
    if not B:
        return ["No permutation statistics were computed for this report."] if s else []
    if _statistic_id(s) == "welch_contrast":
        return (
            _welch_sentences(inputs, cite) + _correction_sentences(inputs, cite) + _association_sentences(inputs, cite)
        )
    units = [u for k, u in _FEATURE_UNITS.items() if k in inputs.tables]
    scheme = s.get("permutation_scheme", "labels shuffled")
    statistic = str(s.get("statistic", "a test statistic"))
    out_of_fold = s.get("out_of_fold", True)
    whose = (
        "out-of-fold attributions of the two groups"
        if out_of_fold
        else "attributions of the explanation set's two groups"
    )
    effects = "fold and site effects" if out_of_fold else "site effects"
    features = _join(units) if units else "every feature"
    null = (
        f"Its null distribution came from B = {_num(B)} permutations ({scheme}, so that {effects} cannot "
        f"masquerade as group differences), with p = (R + 1)/(B + 1) {cite('phipson')}, R the number of "
        f"permutations at least as extreme."
    )
    if _statistic_id(s) == "standardised_contrast":
        out = [
            f"For each feature ({features}), the {whose} were compared by their contrast: the mean "
            f"attribution of cases minus that of controls within each permutation stratum, averaged over "
            f"strata with weights n1 n0 / n (in log-odds). The test statistic was the contrast divided by its "
            f"exact standard deviation under the permutations (a z statistic). " + null
        ]
    else:
        if _statistic_id(s) == "pooled_t":
            statistic = "a two-sample t statistic with pooled variance (cases minus controls)"
        out = [f"For each feature ({features}), {statistic} contrasted the {whose}. " + null]
    out += _ranking_sentences(s)
    if not out_of_fold:
        out.append(
            "As no model learned from the explanation set's labels, permuting them with the models fixed "
            "gives an exact null distribution."
        )
    out += _correction_sentences(inputs, cite)
    if out_of_fold:
        out.append(
            "Caveat: the permutations hold the attributions fixed, while the model that explains each fold "
            "learned from the other folds' labels, so the null distribution is too narrow. On simulated null "
            "cohorts 5.2-8.5% of p_perm fell at or below 0.05, and 6-11.5% of tables held a family-wise "
            "false positive at the nominal 5% (migtrans docs/benchmarks.md); read p-values near a threshold "
            "with caution."
        )
    return out + _association_sentences(inputs, cite)


def _ranking_sentences(s) -> list[str]:
    ranked = s.get("ranking_id") or ("contrast" if str(s.get("ranking", "")).startswith("contrast") else None)
    if ranked != "contrast":
        return []
    return [
        "Features were ranked by their contrast, largest first. By completeness the contrasts of all "
        "inputs add up to the gap in mean log-odds the model opens between the groups, so the ranking "
        "follows how much the model's separation rests on a feature."
    ]


def _external_alignment_sentence(alignment: dict) -> str:
    """How an external cohort was matched to the run's (`migtrans.training.align_cohort`)."""
    text = (
        "Its SNPs were matched to the run's by id (alleles recoded where swapped"
        + (f": {_num(alignment['snps_flipped'])} SNPs" if alignment.get("snps_flipped") else "")
        + "), its genetic principal components projected onto the training cohort's, its imaging read inside the "
        "run's mask and prepared by each fold's fitted preprocessing."
    )
    if alignment.get("snps_imputed"):
        text += (
            f" {_num(alignment['snps_imputed'])} of the run's SNPs were missing from it and set to each fold's "
            f"training mean."
        )
    return text


def _welch_sentences(inputs: ReportInputs, cite) -> list[str]:
    """The statistic and the null of reports whose tables use the Welch-type contrast (issue 16 on)."""
    s = inputs.settings
    units = [u for k, u in _FEATURE_UNITS.items() if k in inputs.tables]
    features = _join(units) if units else "every feature"
    null = s.get("null", "explanation_set")
    held_set = null in ("explanation_set", "external") or s.get("out_of_fold") is False
    strata = "site" if held_set else "fold x site"
    whose = (
        "external cohort's attributions of"
        if null == "external"
        else "attributions of the explanation set's"
        if held_set
        else "out-of-fold attributions of"
    )
    out = [
        f"For each feature ({features}), the {whose} cases and controls were compared by their contrast: the "
        f"difference of their mean attributions within each stratum ({strata}), averaged over strata with "
        f"weights n1 n0 / n (in log-odds). The test statistic was that contrast over its unpooled standard "
        f"error (a stratified Welch statistic {cite('welch')}), so that unequal group sizes and spreads do not "
        f"inflate it."
    ]
    out += _ranking_sentences(s)
    B = _num(s.get("n_permutations"))
    if null == "retraining":
        out.append(
            f"p-values test the global null of a retraining permutation scheme {cite('altmann')}: the whole "
            f"pipeline (fold-fitted preprocessing, training with identical settings and seeds, integrated "
            f"gradients with identical settings) was rerun on labels permuted within fold x site, each fold "
            f"keeping its case count, B_r = {B} times, and the same statistic computed with the permuted labels; "
            f"p = (R + 1)/(B_r + 1) {cite('phipson')}, R the null runs with a statistic at least as extreme. A "
            f"small p says the feature's contrast is larger than the same pipeline trained on random labels "
            f"produces. This is a test of the global null (labels exchangeable with all the data): with signal "
            f"present elsewhere a null feature's p-value need not be uniform, and max-T controls the "
            f"family-wise error in the weak sense (docs/benchmarks.md measures both cases)."
        )
        if s.get("n_null_runs_other_settings"):
            out.append(
                f"{_num(s['n_null_runs_other_settings'])} further null runs, made with other explanation "
                f"settings, were not used."
            )
    elif null == "per_fold":
        k = _num(s.get("folds"))
        out.append(
            f"p-values test per-fold fixed-model exchangeability: each subject was explained by the model of "
            f"the fold that held it out, so within each fold the labels were permuted within site B = {B} times "
            f"with that fold's model fixed, an exact test that the feature's attribution is exchangeable "
            f"between cases and controls in that fold (p_k = (R + 1)/(B + 1) {cite('phipson')}). The K = {k} "
            f"fold p-values were combined by Bonferroni, p = min(1, K min_k p_k), valid whatever the dependence "
            f"between folds; the family-wise p-values combine each fold's max-T p-values the same way."
        )
        found, other = s.get("n_null_runs") or 0, s.get("n_null_runs_other_settings") or 0
        if found:
            why = "fewer than the 19 needed for a p-value of 0.05" if found < 19 else "the per-fold test was asked for"
            out.append(f"{_num(found)} retraining null runs were found and not used ({why}).")
        if other:
            out.append(f"{_num(other)} retraining null runs made with other settings were not used.")
    elif null == "external":
        out.append(
            f"p-values test fixed-model exchangeability on the external cohort: its labels were permuted within "
            f"site B = {B} times with the fold models, trained on another cohort, fixed; p = (R + 1)/(B + 1) "
            f"{cite('phipson')}. As no model learned from those labels, the null distribution is exact. A small p "
            f"says the feature's attribution differs between the external cohort's cases and controls given the "
            f"models, a replication of what the models learned, not a test of the training cohort."
        )
    else:
        out.append(
            f"p-values test fixed-model exchangeability on the explanation set: its labels were permuted within "
            f"site B = {B} times with the fold models fixed, p = (R + 1)/(B + 1) {cite('phipson')}. As no model "
            f"learned from those labels, the null distribution is exact."
        )
    if null != "retraining":
        out.append(
            "Caveat: a fixed-model test asks whether the attributions differ between the groups given the "
            "model, not whether the model relies on the feature. A feature the model barely uses can differ "
            "consistently, because its attribution is mostly its distance from the baseline times the model's "
            "gradient, and the gradient differs between cases and controls wherever the model has learned "
            "something; with signal present, null features then reach small p-values (migtrans "
            "docs/benchmarks.md). Read p-values together with the contrast, and use the retraining null for "
            "reliance."
        )
    return out


def _correction_sentences(inputs: ReportInputs, cite) -> list[str]:
    s = inputs.settings
    corrections = []
    if s.get("fwer"):
        corrections.append(
            f"family-wise error by the {s['fwer']} method across the features of each table "
            f"{cite('maxt', note='p_fwer')}"
        )
    if s.get("fdr"):
        corrections.append(
            f"the false discovery rate by {s['fdr']} q-values {cite('bh', note='q_fdr')}, "
            f"features without a finite statistic not counted as tests"
        )
    return ["We controlled " + _join(corrections) + "."] if corrections else []


def _adjustment_sentences(inputs: ReportInputs) -> list[str]:
    """How covariates entered the models: what each fold regressed out of each modality, or nothing."""
    train = inputs.train or {}
    adjust = train.get("adjust")
    if adjust is None:  # runs made before the option existed adjusted nothing
        return []
    if adjust == "none":
        return ["No covariate was regressed out of the model inputs."]
    phen = inputs.cohort.get("phenotypes", {}) or {}
    imaging = list(phen.get("covariates") or [])
    if phen.get("site_column") and phen["site_column"] not in imaging:
        imaging.append(phen["site_column"])
    modalities = train.get("modalities") or []
    parts = []
    if imaging and {"fnc", "smri"} & set(modalities):
        where = {
            frozenset({"fnc", "smri"}): "every FNC edge and gray-matter voxel",
            frozenset({"fnc"}): "every FNC edge",
            frozenset({"smri"}): "every gray-matter voxel",
        }[frozenset({"fnc", "smri"} & set(modalities))]
        parts.append(f"{_join(imaging)} out of {where}")
    smri = inputs.cohort.get("smri", {}) or {}
    if "smri" in modalities and (smri.get("tiv_xml") or smri.get("tiv_column")):
        source = "from CAT12's reports" if smri.get("tiv_xml") else f"(column {smri['tiv_column']})"
        parts.append(f"total intracranial volume {source} out of every gray-matter voxel")
    n_pcs = inputs.settings.get("n_pcs")
    if n_pcs and "snp" in modalities:
        parts.append(f"the {_count(n_pcs, 'genetic principal component')} out of every dosage")
    if not parts:
        return []
    return [
        "Within each training fold, least-squares regression removed "
        + _join(parts)
        + ", with coefficients fitted on the fold's training subjects only and applied unchanged to its "
        "held-out subjects (categorical covariates as indicators of the training fold's levels)."
    ]


def _smri_space_sentences(inputs: ReportInputs) -> list[str]:
    space = (inputs.cohort.get("smri", {}) or {}).get("space")
    return [f"Gray-matter maps were in {space} space, as the cohort file states."] if space else []


def _genotype_qc_sentences(inputs: ReportInputs) -> list[str]:
    s = inputs.settings
    if "qc_thresholds" not in s:
        return []
    out = []
    t, counts = s.get("qc_thresholds"), s.get("qc_summary") or {}
    if t is None:
        out.append("No genotype quality control was applied.")
    else:
        rules = [
            ("subject_missing", "subjects with more than {:g} missing calls"),
            ("snp_missing", "SNPs with more than {:g} missing calls"),
            ("hwe", "SNPs with a Hardy-Weinberg exact p < {:g} in controls"),
            ("maf", "SNPs with minor allele frequency < {:g}"),
            ("mac", "SNPs with minor allele count < {:g}"),
            ("missing_diff", "SNPs whose missingness differed between cases and controls (Fisher p < {:g})"),
            ("het_sd", "subjects whose heterozygosity F lay more than {:g} SD from the mean"),
        ]
        removed = [
            rule.format(float(t[key])) + f" ({_num(counts.get('heterozygosity' if key == 'het_sd' else key, 0))})"
            for key, rule in rules
            if t.get(key) is not None
        ]
        sentence = "Genotype quality control, in PLINK 1.9's order, removed " + _join(removed)
        if t.get("kinship") is not None:
            pairs = _count(counts.get("related_pairs", 0), "related pair")
            what = "one subject of each was removed" if t.get("relatives") == "drop" else "all were kept"
            sentence += (
                f"; KING-robust kinship above {float(t['kinship']):g} flagged {pairs} and {what}"
                f" ({_num(counts.get('relatedness', 0))} removed)"
            )
        out.append(
            sentence
            + f"; {_num(counts.get('snps_kept', 0))} SNPs and {_num(counts.get('subjects_kept', 0))} subjects remained."
        )
        out += [note[0].upper() + note[1:] + "." for note in s.get("qc_notes") or []]
    if s.get("n_pcs"):
        out.append(
            f"Ancestry was summarised by {_count(s['n_pcs'], 'genetic principal component')} of "
            f"{_num(s.get('n_pruned_snps'))} LD-pruned common SNPs (MAF \u2265 0.05, pairwise r\u00b2 < 0.2 in windows "
            f"of 50 SNPs), computed without labels as PLINK 1.9 --pca does."
        )
    return out


def lambda_detail(s) -> str:
    """What a recorded lambda_GC rests on, for every place the report states it: ``95% bootstrap interval
    a–b, over N LD-pruned common SNPs`` (the parts recorded; empty for explanations made before them)."""
    interval, n = s.get("lambda_gc_interval"), s.get("lambda_gc_snps")
    parts = []
    if interval and all(v is not None and math.isfinite(float(v)) for v in interval):
        parts.append(f"95% bootstrap interval {float(interval[0]):.3f}\u2013{float(interval[1]):.3f}")
    if n:
        parts.append(f"over {_num(n)} LD-pruned common SNPs")
    return ", ".join(parts)


def _association_sentences(inputs: ReportInputs, cite) -> list[str]:
    s, out = inputs.settings, []
    if "snps" in inputs.tables:
        cov = s.get("association_covariates")
        if cov is None:  # explanations made before the covariates were recorded
            cov = list((inputs.cohort.get("phenotypes", {}) or {}).get("covariates") or [])
        pcs = [c for c in cov if c.startswith("PC") and c[2:].isdigit()]
        named = [c for c in cov if c not in pcs] + (
            [f"{_count(len(pcs), 'genetic principal component')}"] if pcs else []
        )
        site = (inputs.cohort.get("phenotypes", {}) or {}).get("site_column")
        adj = f" adjusted for {_join(named)}" if named else " without covariates"
        if site and site in cov:
            adj += f" ({site} as a categorical covariate)"
        sentence = (
            f"For comparison with a conventional GWAS view, each SNP was also tested by logistic regression "
            f"of diagnosis on dosage{adj} (p_assoc); its genome-wide family-wise p (p_fwer_assoc) came from "
            f"max-T over the trend statistic with labels permuted within site, dosages centred within site"
            + (" and residualised on the other covariates" if len(named) > (1 if site and site in cov else 0) else "")
        )
        if s.get("lambda_gc") is not None:
            detail = lambda_detail(s)
            sentence += f"; genomic inflation was \u03bbGC = {float(s['lambda_gc']):.3f}"
            sentence += (f" ({detail})" if detail else "") + f" {cite('gc')}"
        out.append(sentence + ".")
    return out


def gene_source(inputs: ReportInputs) -> tuple[str | None, bool]:
    """The gene annotation used: (description, recorded). ``recorded`` is False when it was inferred."""
    genes = inputs.settings.get("genes")
    recorded = genes is not None
    if genes is None:
        genes = (inputs.cohort.get("genotypes", {}) or {}).get("build")
    if genes is None:
        return None, False
    key = str(genes).lower()
    if key in ("grch37", "grch38"):
        return (
            f"GENCODE protein-coding-like genes ({'GRCh37' if key == 'grch37' else 'GRCh38'}) as packaged in "
            f"GeneLocator",
            recorded,
        )
    return f"the user-supplied annotation {genes}", recorded


def atlas_name(inputs: ReportInputs) -> str | None:
    """The atlas of ``regions.csv``: recorded in settings, else read from the table's ``atlas`` column."""
    atlas = inputs.settings.get("atlas")
    if atlas is None and "regions" in inputs.tables and "atlas" in inputs.tables["regions"]:
        values = [a for a in inputs.tables["regions"]["atlas"].unique() if a]
        atlas = values[0] if values else None
    return atlas


def _annotation_sentences(inputs: ReportInputs, cite) -> list[str]:
    out = []
    if "snps" in inputs.tables or "loci" in inputs.tables:
        source, _ = gene_source(inputs)
        if source:
            ref = f" {cite('gencode')}" if source.startswith("GENCODE") else ""
            out.append(
                f"SNPs were assigned the overlapping or nearest gene, and loci the genes they overlap, from "
                f"{source}{ref}."
            )
    atlas = atlas_name(inputs)
    if atlas:
        name = f"the AAL atlas {cite('aal')}" if str(atlas).lower() == "aal" else f"the {atlas} atlas"
        out.append(
            f"Voxel attributions were summarised by region of {name}, resampled to the analysis grid by "
            f"nearest neighbour."
        )
    if "regions" in inputs.tables or "nodes" in inputs.tables:
        out.append(f"Brain maps and connectome figures were drawn with nilearn {cite('nilearn')}.")
    return out


def _software_sentence(versions: dict) -> str:
    named = []
    for name in ("python", *_PACKAGES):
        run, now = versions.get(name, {}).get("run"), versions.get(name, {}).get("now")
        if run and now and run != now:
            named.append(f"{_DISPLAY.get(name, name)} {run} (training) and {now} (explanations)")
        elif run or now:
            named.append(f"{_DISPLAY.get(name, name)} {run or now}")
    return "Analyses used " + _join(named) + "." if named else ""


def build_methods(report_dir, run_dir=None, *, inputs: ReportInputs | None = None) -> Methods:
    """Write the Methods text from the settings a run and its explanation used.

    Parameters
    ----------
    report_dir : path-like
        The explanation folder (``settings.json``, the result tables).
    run_dir : path-like, optional
        The training run folder (``config.toml``, ``manifest.json``). Default: the run recorded in settings.
    inputs : ReportInputs, optional
        Already-read inputs (`render_report` passes its own so nothing is read twice).

    Returns
    -------
    Methods
        Paragraphs (model and training; explanations; statistics and annotation; software), references, versions.

    Examples
    --------
    >>> from reports.page._methods import build_methods
    >>> methods = build_methods("demo/run/explanations")  # doctest: +SKIP
    >>> print(methods.text)  # doctest: +SKIP
    """
    inputs = inputs if inputs is not None else load_inputs(report_dir, run_dir)
    cite = _Citations()
    versions = software_versions(inputs.manifest)
    paragraphs = [
        " ".join(
            filter(
                None,
                [
                    _cohort_sentence(inputs),
                    *_genotype_qc_sentences(inputs),
                    *_smri_space_sentences(inputs),
                    *_model_sentences(inputs, cite),
                    *_training_sentences(inputs),
                ],
            )
        ),
        " ".join(_attribution_sentences(inputs, cite)),
        " ".join([*_statistics_sentences(inputs, cite), *_annotation_sentences(inputs, cite)]),
        _software_sentence(versions),
    ]
    return Methods(
        paragraphs=tuple(p for p in paragraphs if p),
        references=tuple(REFERENCES[k][1] for k in cite.keys),
        versions=versions,
    )
