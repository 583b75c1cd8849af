"""ganx's own mutation check: does the fast test suite notice when a method breaks?

Each mutation is a small semantic edit of ganx's source (an exact snippet and its replacement)
with the behaviour it breaks and the fast tests that guard that behaviour. One at a time, the
package (src/ganx and conf/) is copied to a temporary directory, the edit is applied there, and
pytest runs the mutation's tests with that copy first on PYTHONPATH, so the test process and
every CLI subprocess it starts (``python -m ganx.train``, torchrun ranks, ``-c`` snippets)
import the mutant. A mutation is *caught* when those tests fail; a snippet that is not found
exactly once is an ERROR (the code moved on: update the mutation), never a pass.

    python scripts/mutants.py                     # every mutation: caught/missed and the score
    python scripts/mutants.py --list              # one mutation per line
    python scripts/mutants.py ema_never_updated noise_not_in_g_step     # a subset
    python scripts/mutants.py --tests-dir OLD/tests --whole-files   # score another suite: OLD
                          # is a checkout (e.g. `git archive` of an older commit: tests/, conf/,
                          # pyproject.toml); the files each mutation names are run in full

Runs on demand, not in CI (about 15-25 minutes on a 2-core CPU).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str  # relative to the repository root
    old: str
    new: str
    breaks: str
    tests: tuple[str, ...]  # pytest node ids under tests/, all in the fast suite


def m(name, file, old, new, breaks, *tests):
    return Mutation(name, file, old, new, breaks, tests)


LOOP = "src/ganx/loop.py"
STEP = "src/ganx/step.py"
STATE = "src/ganx/state.py"
OUTPUTS = "src/ganx/outputs.py"
EVALUATION = "src/ganx/metrics/evaluation.py"
COLLECTIVES = "src/ganx/collectives.py"
REGS = "src/ganx/regularizers.py"
LOSSES = "src/ganx/losses.py"
VALIDATE = "src/ganx/validate.py"
RESUME_RULES = "src/ganx/resume_rules.py"
R3GAN_NETS = "src/ganx/nets/r3gan.py"
T_PROP = "test_properties.py"
T_REG = "test_regularizers.py"
T_VAL = "test_validation.py"
T_RANKS = "test_ranks.py"
T_TRAIN = "test_train.py"
T_R3GAN = "test_r3gan.py"

MUTATIONS = [
    # --- the step -------------------------------------------------------------------------------
    m(
        "ema_never_updated",
        STEP,
        "    for p_ema, p in zip(ema.parameters(), generator.parameters(), strict=True):",
        "    return\n"
        "    for p_ema, p in zip(ema.parameters(), generator.parameters(), strict=True):",
        "the EMA of G stays at G's initial weights",
        f"{T_PROP}::test_ema_follows_g_with_its_decay",
        f"{T_PROP}::test_training_updates_the_ema",
        f"{T_TRAIN}::test_resume_is_bitwise_exact",
    ),
    m(
        "ema_decay_inverted",
        STEP,
        "p_ema.lerp_(p, 1.0 - decay)",
        "p_ema.lerp_(p, decay)",
        "the EMA weighs the new G weights by decay instead of 1 - decay",
        f"{T_PROP}::test_ema_follows_g_with_its_decay",
        f"{T_TRAIN}::test_ema_decay_warms_up",
    ),
    m(
        "eval_reseeds_rng",
        EVALUATION,
        "    with preserved_rng():\n        samples = sample_for_eval(",
        "    torch.manual_seed(step)\n"
        "    with preserved_rng():\n        samples = sample_for_eval(",
        "an evaluation reseeds the training RNG: training with metrics on differs from without",
        f"{T_PROP}::test_evaluation_leaves_training_unchanged",
        f"{T_TRAIN}::test_resume_is_bitwise_exact",
        "test_metrics.py::test_metrics_logged_and_best_checkpoint_follows_objective",
        "test_metrics.py::test_eval_reproduces_training_and_matches_torch_fidelity",
    ),
    m(
        "eval_draws_training_rng",
        EVALUATION,
        "    with preserved_rng():\n        samples = sample_for_eval(",
        "    if True:\n        samples = sample_for_eval(",
        "building the feature network at the first evaluation draws from the training RNG",
        f"{T_PROP}::test_evaluation_leaves_training_unchanged",
        f"{T_TRAIN}::test_resume_is_bitwise_exact",
        "test_metrics.py::test_metrics_logged_and_best_checkpoint_follows_objective",
    ),
    m(
        "anneal_not_in_d_loss",
        STEP,
        "reg.weight_at(step, total) * reg.interval * penalty",
        "reg.weight * reg.interval * penalty",
        "JS annealing is logged but the D loss uses the initial gamma",
        f"{T_PROP}::test_d_loss_uses_the_annealed_weight",
        f"{T_TRAIN}::test_tensorboard_has_losses_and_regularizers",
    ),
    m(
        "lazy_gain_dropped",
        STEP,
        "reg.weight_at(step, total) * reg.interval * penalty",
        "reg.weight_at(step, total) * penalty",
        "lazy regularisation (interval k) is not multiplied by k",
        f"{T_PROP}::test_lazy_penalty_applies_every_kth_d_step_with_gain_k",
        f"{T_TRAIN}::test_each_regularizer_changes_the_d_update",
    ),
    m(
        "lazy_step_skipped",
        STEP,
        "        terms |= lazy_regularization_step(parts, real, fake, step, d_step, settings)\n",
        "        pass\n",
        "StyleGAN2's separate regularisation step never runs: a lazy penalty is dropped",
        "test_reference_details.py::test_lazy_r1_takes_its_own_step_as_stylegan2",
    ),
    m(
        "lazy_optimiser_unadjusted",
        "src/ganx/build.py",
        "        adjusted_for_lazy_steps(opt_d, lazy_interval(cfg))\n",
        "        pass\n",
        "D's lr and betas are not adjusted by k / (k + 1) for separate lazy steps",
        "test_reference_details.py::test_lazy_r1_takes_its_own_step_as_stylegan2",
    ),
    m(
        "lazy_interval_ignored",
        REGS,
        "        return d_step % self.interval == 0\n",
        "        return True\n",
        "a lazy penalty runs on every D step",
        f"{T_REG}::test_lazy_interval_and_bad_weights",
        f"{T_PROP}::test_lazy_penalty_applies_every_kth_d_step_with_gain_k",
    ),
    m(
        "same_real_batch_for_all_d_steps",
        STEP,
        "    for _ in range(n_dis):\n"
        "        terms.append(run(discriminator_step, parts, next_real(),",
        "    real = next_real()\n    for _ in range(n_dis):\n"
        "        terms.append(run(discriminator_step, parts, real,",
        "one real batch is reused for all n_dis D steps (README: a fresh one each)",
        f"{T_PROP}::test_each_d_step_gets_a_fresh_real_batch",
        f"{T_TRAIN}::test_resume_is_bitwise_exact",
    ),
    m(
        "n_dis_ignored",
        STEP,
        "    for _ in range(n_dis):\n",
        "    for _ in range(1):\n",
        "one D step per G step whatever train.n_dis says",
        f"{T_PROP}::test_each_d_step_gets_a_fresh_real_batch",
        f"{T_TRAIN}::test_resume_is_bitwise_exact",
    ),
    m(
        "noise_not_in_g_step",
        REGS,
        "    def transform_g_input(self, fake, step, total_steps):\n"
        "        return self._noisy(fake, step, total_steps)",
        "    def transform_g_input(self, fake, step, total_steps):\n        return fake",
        "instance noise is left out of G's step",
        f"{T_PROP}::test_instance_noise_reaches_every_d_input_in_both_steps",
        f"{T_REG}::test_instance_noise_anneals_to_zero",
    ),
    m(
        "noise_only_on_reals",
        REGS,
        "return self._noisy(real, step, total_steps), self._noisy(fake, step, total_steps)",
        "return self._noisy(real, step, total_steps), fake",
        "instance noise reaches D's real inputs only",
        f"{T_PROP}::test_instance_noise_reaches_every_d_input_in_both_steps",
        f"{T_REG}::test_instance_noise_anneals_to_zero",
    ),
    m(
        "noise_anneal_twice_as_slow",
        REGS,
        "max(0.0, 1.0 - step / span)",
        "max(0.0, 1.0 - step / (2 * span))",
        "instance noise anneals over twice the configured steps",
        f"{T_REG}::test_instance_noise_anneals_to_zero",
    ),
    m(
        "wgan_clip_not_called",
        STEP,
        "    parts.loss.after_d_step(parts.discriminator)\n",
        "",
        "loss.clip is configured but D's weights are never clipped in training",
        f"{T_PROP}::test_wgan_clipping_bounds_d_weights_in_training",
        "test_losses.py::test_wgan_and_clipping",
    ),
    m(
        "wgan_clip_one_sided",
        LOSSES,
        "p.clamp_(-self.clip, self.clip)",
        "p.clamp_(max=self.clip)",
        "WGAN clipping bounds D's weights from above only",
        "test_losses.py::test_wgan_and_clipping",
        f"{T_PROP}::test_wgan_clipping_bounds_d_weights_in_training",
    ),
    m(
        "aux_not_in_g_loss",
        STEP,
        '        total = total + terms["aux/G"]\n',
        "",
        "G ignores its SSGAN/InfoMax auxiliary term (logged, not optimised)",
        f"{T_PROP}::test_aux_term_changes_the_g_update",
        "test_aux.py::test_family_trains_with_aux_and_any_reg",
    ),
    m(
        "aux_not_in_d_loss",
        STEP,
        '        total_loss = total_loss + terms["aux/D"]\n',
        "",
        "D ignores its auxiliary term",
        "test_aux.py::test_aux_term_changes_the_d_update",
    ),
    m(
        "autocast_noop",
        STEP,
        '    return torch.autocast(device.type, dtype=torch.bfloat16 if amp == "bf16" '
        "else torch.float16)",
        "    return contextlib.nullcontext()",
        "hardware.amp changes nothing: the step runs in fp32",
        f"{T_PROP}::test_amp_runs_the_nets_in_low_precision",
        f"{T_TRAIN}::test_hardware_and_model_options_train",
    ),
    m(
        "nan_check_at_flush_removed",
        OUTPUTS,
        "        if bad:\n            raise Diverged(",
        "        if False:\n            raise Diverged(",
        "non-finite logged means (GPU: no per-step check) go unnoticed",
        f"{T_PROP}::test_nonfinite_means_stop_the_run_at_log_flush",
        "test_reliability.py::test_nonfinite_loss_stops_and_keeps_last_good_checkpoint",
    ),
    m(
        "d_step_nan_check_removed",
        STEP,
        "    if settings.check:\n        require_finite(step, terms, settings.world)\n"
        "    parts.opt_d.zero_grad",
        "    parts.opt_d.zero_grad",
        "a NaN D loss is applied (and cannot be skipped) instead of stopping before the update",
        "test_reliability.py::test_nonfinite_loss_stops_and_keeps_last_good_checkpoint",
    ),
    m(
        "simultaneous_ignored",
        STEP,
        '    if updates == "g_first":\n        return g_first_iteration(',
        '    if updates == "simultaneous":\n        updates = "alternating"\n'
        '    if updates == "g_first":\n        return g_first_iteration(',
        "train.updates=simultaneous trains alternating",
        "test_dirac_toy.py::test_simultaneous_and_alternating_updates_differ",
    ),
    m(
        "dirac_step_unweighted_penalty",
        "src/ganx/dirac_run.py",
        "total_loss = total_loss + reg.weight_at(step, total) * reg.interval * penalty",
        "total_loss = total_loss + penalty",
        "the Dirac-GAN's own step adds its penalties without their weight (gamma)",
        "test_dirac_run.py::test_a_penalty_a_noise_and_a_relativistic_loss_follow_training_iteration",
    ),
    m(
        "dirac_step_g_after_d",
        "src/ganx/dirac_run.py",
        "        if not plan.simultaneous:\n            pending = g_loss(parts, settings, step)",
        "        if True:\n            pending = g_loss(parts, settings, step)",
        "ganx-dirac's simultaneous updates take G's gradient after D moved (alternating)",
        "test_dirac_run.py::test_a_penalty_a_noise_and_a_relativistic_loss_follow_training_iteration",
    ),
    m(
        "lr_decay_off",
        STATE,
        "lambda s: 1.0 - s / total",
        "lambda s: 1.0",
        "train.lr_decay keeps the learning rates constant",
        f"{T_TRAIN}::test_lr_decay_reaches_zero_and_bn_stats_choice",
    ),
    # --- losses ---------------------------------------------------------------------------------
    m(
        "minimax_g_sign",
        LOSSES,
        "        return -F.softplus(fake_logits).mean()",
        "        return F.softplus(fake_logits).mean()",
        "minimax G pushes its fakes' logits down",
        "test_losses.py",
    ),
    m(
        "ns_g_saturating",
        LOSSES,
        "        return F.softplus(-fake_logits).mean()",
        "        return -F.softplus(fake_logits).mean()",
        "the non-saturating G loss becomes the saturating one",
        "test_losses.py",
    ),
    m(
        "wgan_d_sign",
        LOSSES,
        "return fake_logits.mean() - real_logits.mean()",
        "return real_logits.mean() - fake_logits.mean()",
        "the WGAN critic prefers fakes",
        "test_losses.py",
    ),
    m(
        "lsgan_real_target",
        LOSSES,
        "0.5 * ((real_logits - self.b) ** 2).mean()",
        "0.5 * ((real_logits - self.a) ** 2).mean()",
        "LSGAN pulls real logits to the fake target",
        "test_losses.py",
    ),
    m(
        "hinge_no_margin",
        LOSSES,
        "F.relu(1.0 - real_logits).mean()",
        "F.relu(-real_logits).mean()",
        "hinge loses its margin on reals",
        "test_losses.py",
        "test_dirac_toy.py::test_critical_gamma_is_twice_f_prime",
    ),
    m(
        "rpgan_pairing_shuffled",
        LOSSES,
        "        return F.softplus(fake_logits - real_logits).mean()",
        "        return F.softplus(fake_logits - real_logits.flip(0)).mean()",
        "RpGAN/RSGAN's D pairs the i-th real with another sample's fake, not the i-th",
        "test_losses.py",
    ),
    m(
        "relativistic_g_ignores_reals",
        STEP,
        '        terms = {"loss/G": parts.loss.g_loss(fake_logits, real_logits)}',
        '        terms = {"loss/G": parts.loss.g_loss(fake_logits, torch.zeros_like(fake_logits))}',
        "a relativistic G loss compares its fakes with 0 instead of D on the G step's reals",
        f"{T_PROP}::test_relativistic_g_loss_pairs_fakes_with_the_g_steps_real_batch",
    ),
    m(
        "g_real_batch_for_every_loss",
        STEP,
        "    return next_real() if parts.loss.needs_real_in_g else None",
        "    return next_real()",
        "every loss's G step reads a real batch: other losses skip data they used to train on",
        f"{T_TRAIN}::test_only_relativistic_losses_draw_a_real_batch_for_g",
    ),
    m(
        "ragan_means_detached",
        LOSSES,
        "self.high(own - other.mean()).mean() + self.low(other - own.mean()).mean()",
        "self.high(own - other.mean().detach()).mean()"
        " + self.low(other - own.mean().detach()).mean()",
        "RaGAN's batch means lose their gradient (the paper's and the code's keep it)",
        "test_losses.py",
    ),
    # --- regularizers -----------------------------------------------------------------------
    m(
        "r1_on_fakes",
        REGS,
        "        return 0.5 * grad_norm_squared(batch.real_logits, batch.real).mean()",
        "        return 0.5 * grad_norm_squared(batch.fake_logits, batch.fake).mean()",
        "R1 penalises D's gradient at the fakes",
        f"{T_REG}::test_r1_r2_are_half_squared_norm",
        f"{T_REG}::test_penalties_are_taken_where_their_papers_say",
    ),
    m(
        "r2_on_reals",
        REGS,
        "        return 0.5 * grad_norm_squared(batch.fake_logits, batch.fake).mean()",
        "        return 0.5 * grad_norm_squared(batch.real_logits, batch.real).mean()",
        "R2 penalises D's gradient at the reals",
        f"{T_REG}::test_r1_r2_are_half_squared_norm",
        f"{T_REG}::test_penalties_are_taken_where_their_papers_say",
    ),
    # --- R3GAN: the net's initialisation and R1/R2's gamma schedule ---------------------------
    m(
        "r3gan_branch_scaling_dropped",
        R3GAN_NETS,
        "        gain = branch_gain(total_blocks)\n",
        "        gain = ACTIVATION_GAIN\n",
        "R3GAN's residual branches are not scaled down by the number of blocks (L^-1/4)",
        f"{T_R3GAN}::test_residual_branches_start_scaled_and_zero",
        f"{T_R3GAN}::test_branch_gain_follows_the_number_of_blocks",
    ),
    m(
        "r3gan_branch_not_zero",
        R3GAN_NETS,
        "        self.project = conv(expanded, width, 1, gain=0.0)",
        "        self.project = conv(expanded, width, 1, gain=gain)",
        "R3GAN's residual branches do not start at zero (each block is not the identity)",
        f"{T_R3GAN}::test_residual_branches_start_scaled_and_zero",
    ),
    m(
        "cosine_schedule_ignored",
        REGS,
        '        if self.schedule == "constant":\n            return self.weight\n',
        "        return self.weight\n",
        "R1/R2's cosine schedule is ignored: the weight stays at its start value",
        f"{T_PROP}::test_d_loss_uses_the_cosine_scheduled_weight",
        f"{T_REG}::test_r1_r2_weight_schedules",
        f"{T_TRAIN}::test_tensorboard_has_losses_and_regularizers",
    ),
    m(
        "cosine_span_ignored",
        REGS,
        "        steps = self.schedule_steps or max(total_steps, 1)",
        "        steps = max(total_steps, 1)",
        "the cosine schedule spans the whole run whatever schedule_steps says",
        f"{T_PROP}::test_d_loss_uses_the_cosine_scheduled_weight",
        f"{T_REG}::test_r1_r2_weight_schedules",
    ),
    m(
        "gp_no_interpolation",
        REGS,
        "        x_hat = interpolate(batch.real.detach(), batch.fake.detach())",
        "        x_hat = batch.real.detach().requires_grad_(True)",
        "WGAN-GP takes the gradient at the reals, not on real-fake interpolates",
        f"{T_REG}::test_gp_two_sided_and_zero_centred",
        f"{T_REG}::test_gp_is_taken_on_interpolates",
    ),
    m(
        "gp_target_ignored",
        REGS,
        "return ((norms - self.target) ** 2).mean()",
        "return ((norms - 1.0) ** 2).mean()",
        "reg=gp0 is the one-centred penalty",
        f"{T_REG}::test_gp_two_sided_and_zero_centred",
    ),
    m(
        "dragan_no_perturbation",
        REGS,
        "perturbed = real + self.noise_scale * real.std() * torch.rand_like(real)",
        "perturbed = real",
        "DRAGAN takes the gradient at the reals, not around them",
        f"{T_REG}::test_dragan_penalty",
        f"{T_REG}::test_dragan_is_taken_around_the_reals",
    ),
    m(
        "js_real_weight_wrong",
        REGS,
        "real_term = (1 - torch.sigmoid(batch.real_logits.flatten())) ** 2",
        "real_term = torch.sigmoid(batch.real_logits.flatten()) ** 2",
        "the JS regularizer weighs real gradients by D(x)^2",
        f"{T_REG}::test_js_regularizer_formula",
    ),
    m(
        "js_anneal_off",
        REGS,
        "return self.weight * self.decay ** (step / max(total_steps, 1))",
        "return self.weight",
        "JS annealing keeps gamma constant",
        f"{T_REG}::test_js_annealing_schedule",
        f"{T_PROP}::test_d_loss_uses_the_annealed_weight",
    ),
    m(
        "rlc_anchors_swapped",
        REGS,
        "return ((batch.real_logits - self.alpha_fake) ** 2).mean()",
        "return ((batch.real_logits - self.alpha_real) ** 2).mean()",
        "R_LC pulls real logits to the real anchor",
        f"{T_REG}::test_rlc_fixed_anchors",
    ),
    m(
        "lecam_anchor_swapped",
        REGS,
        "F.relu(batch.real_logits - anchor_fake)",
        "F.relu(batch.real_logits - anchor_real)",
        "LeCam compares real logits with the real anchor",
        f"{T_REG}::test_lecam_ema_anchors_and_state",
    ),
    m(
        "lecam_decay_ignored",
        REGS,
        "decay = self.decay if warm else 0.0",
        "decay = 0.0",
        "LeCam's anchors track the batch only (no moving average)",
        f"{T_REG}::test_lecam_ema_anchors_and_state",
    ),
    m(
        "dat_wrong_direction",
        REGS,
        "return (x - (self.step_size * grad).clamp(-self.clamp, self.clamp)).detach()",
        "return (x + (self.step_size * grad).clamp(-self.clamp, self.clamp)).detach()",
        "DAT moves samples along the gap gradient (widening the gap)",
        f"{T_REG}::test_dat_moves_samples_against_the_gap_gradient",
    ),
    m(
        "dat_fakes_unclamped",
        REGS,
        "                new_fake = self._clamped(new_fake)\n",
        "",
        "DAT's adversarial fakes leave [-1, 1]",
        f"{T_REG}::test_dat_step_clamp_image_clamp_and_sides",
        f"{T_REG}::test_dat_clamps_adversarial_fakes_to_the_image_range",
    ),
    # --- resume and checkpoints ---------------------------------------------------------------
    m(
        "resume_rng_not_restored",
        STATE,
        '"rng": Slot(rng_state, set_rng_state),',
        '"rng": Slot(rng_state, lambda saved: None),',
        "a resumed run draws other noise than the uninterrupted one",
        f"{T_TRAIN}::test_n_steps_then_n_more_equals_2n",
    ),
    m(
        "resume_data_position_lost",
        STATE,
        '"data": stateful(parts.stream),',
        '"data": Slot(parts.stream.state_dict, lambda saved: None),',
        "a resumed run restarts the data stream",
        f"{T_TRAIN}::test_n_steps_then_n_more_equals_2n",
    ),
    m(
        "resume_regularizer_state_lost",
        STATE,
        "                reg.load_state_dict(saved[name])\n",
        "                pass\n",
        "LeCam's anchors restart at 0 on resume",
        f"{T_TRAIN}::test_resume_is_bitwise_exact",
    ),
    m(
        "resume_opt_d_lost",
        STATE,
        '"opt_d": stateful(parts.opt_d),',
        '"opt_d": Slot(parts.opt_d.state_dict, lambda saved: None),',
        "D's Adam moments restart on resume",
        f"{T_TRAIN}::test_n_steps_then_n_more_equals_2n",
    ),
    m(
        "resume_lr_schedule_lost",
        STATE,
        "        sched.load_state_dict(sched_state)\n",
        "        pass\n",
        "a resumed run restarts the learning-rate decay",
        f"{T_TRAIN}::test_resume_is_bitwise_exact",
    ),
    m(
        "resume_ema_from_g",
        STATE,
        "self.ema.load_state_dict(weights or self.parts.generator.state_dict())",
        "self.ema.load_state_dict(self.parts.generator.state_dict())",
        "a resumed run restarts the EMA from G",
        f"{T_TRAIN}::test_n_steps_then_n_more_equals_2n",
    ),
    m(
        "save_not_atomic",
        "src/ganx/checkpoint.py",
        '        with os.fdopen(fd, "wb") as f:\n'
        "            writer = _RecordingWriter(f)\n"
        "            try:\n"
        "                torch.save(state, writer)\n"
        "            except RuntimeError as err:\n"
        "                if writer.error is None:\n"
        "                    raise\n"
        "                raise writer.error from err\n"
        "            f.flush()\n"
        "            os.fsync(f.fileno())\n"
        "        os.replace(tmp, path)\n",
        "        os.close(fd)\n        Path(tmp).unlink()\n        torch.save(state, path)\n",
        "a checkpoint is written in place: a failed write destroys the previous last.pt",
        "test_reliability.py::test_failed_checkpoint_write_is_clear_and_keeps_previous",
    ),
    m(
        "keep_one_too_many",
        "src/ganx/checkpoint.py",
        "steps[: max(len(steps) - keep, 0)]",
        "steps[: max(len(steps) - keep - 1, 0)]",
        "ckpt.keep keeps one step checkpoint too many",
        f"{T_TRAIN}::test_ckpt_keep",
    ),
    m(
        "compatibility_check_off",
        RESUME_RULES,
        "    if refused:\n        listed = ",
        "    if False:\n        listed = ",
        "resuming with another model/data config is not refused up front",
        f"{T_TRAIN}::test_resume_with_other_shapes_fails_clearly",
    ),
    m(
        "predated_setting_any_value",
        RESUME_RULES,
        "        ran_so = key in defaults and now == defaults[key]\n",
        "        ran_so = key in defaults\n",
        "a checkpoint from before a setting resumes with any value of it, not only the one it ran",
        "test_resume_inventory.py::test_a_setting_the_checkpoint_predates_resumes_at_its_default_only",
    ),
    m(
        "periodic_action_skipped_at_the_end",
        "src/ganx/schedule.py",
        "if step % every == 0 or final)",
        "if step % every == 0)",
        "the last step of a run (or of a paused invocation) has no sample grid",
        "test_schedule.py::test_a_periodic_action_is_one_entry_of_the_table_and_its_every_key",
        "test_schedule.py::test_stop_at_and_a_stop_request_end_with_a_checkpoint",
    ),
    m(
        "best_mode_inverted",
        OUTPUTS,
        'value > best if mode == "max" else value < best',
        'value < best if mode == "max" else value > best',
        "best.pt follows the worst value of the objective",
        "test_metrics.py::test_metrics_logged_and_best_checkpoint_follows_objective",
    ),
    # --- metrics --------------------------------------------------------------------------------
    m(
        "precision_recall_swapped",
        "src/ganx/metrics/fidelity.py",
        'out[f"precision{tag}"] = float(prc["precision"])\n'
        '            out[f"recall{tag}"] = float(prc["recall"])',
        'out[f"precision{tag}"] = float(prc["recall"])\n'
        '            out[f"recall{tag}"] = float(prc["precision"])',
        "precision and recall are reported under each other's names",
        "test_metrics.py::test_precision_recall_and_classes_on_known_features",
        "test_metrics.py::test_fid_of_data_against_itself_is_zero_and_against_noise_large",
    ),
    m(
        "classes_always_ten",
        "src/ganx/metrics/fidelity.py",
        'out[f"classes{tag}"] = float((counts >= 0.2 * n / 10).sum())',
        'out[f"classes{tag}"] = float(len(counts))',
        "class coverage reports every class as covered",
        "test_metrics.py::test_precision_recall_and_classes_on_known_features",
        "test_metrics.py::test_fid_of_data_against_itself_is_zero_and_against_noise_large",
    ),
    m(
        "modes_no_threshold",
        "src/ganx/metrics/registry.py",
        "threshold = 0.2 * len(samples) / len(centres)",
        "threshold = 1",
        "a mode counts as covered with a single sample (PacGAN's 20% rule dropped)",
        "test_dirac_toy.py::test_mode_metrics_on_known_samples",
        "test_dirac_toy.py::test_r1_covers_more_ring8_modes_than_no_regularizer",
    ),
    m(
        "kl_not_from_uniform",
        "src/ganx/metrics/stats.py",
        "(p[nonzero] * (p[nonzero] * len(counts)).log()).sum()",
        "(p[nonzero] * (p[nonzero]).log()).sum()",
        "the mode/class KL is the negative entropy, not the KL from uniform",
        "test_dirac_toy.py::test_mode_metrics_on_known_samples",
        "test_metrics.py::test_precision_recall_and_classes_on_known_features",
        "test_dirac_toy.py::test_r1_covers_more_ring8_modes_than_no_regularizer",
    ),
    # --- ranks ----------------------------------------------------------------------------------
    m(
        "gradients_summed",
        COLLECTIVES,
        "    flat /= world\n",
        "",
        "gradients are summed over ranks, not averaged",
        f"{T_RANKS}::test_two_gloo_ranks_average_gradients_and_values",
    ),
    m(
        "logged_values_summed",
        COLLECTIVES,
        "    return values / world",
        "    return values",
        "logged losses are summed over ranks",
        f"{T_RANKS}::test_two_gloo_ranks_average_gradients_and_values",
    ),
    m(
        "every_rank_reads_rank0_share",
        "src/ganx/data/__init__.py",
        "return (batch * self.world + self.rank) * self.batch_size",
        "return (batch * self.world) * self.batch_size",
        "every rank trains on rank 0's batches",
        f"{T_RANKS}::test_rank_shards_are_disjoint_and_cover_the_epoch",
        "test_data.py::test_batch_stream_order_depends_only_on_seed_epoch_and_position",
    ),
    m(
        "epoch_order_ignores_epoch",
        "src/ganx/data/__init__.py",
        "gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)",
        "gen = torch.Generator().manual_seed(seed * 1_000_003)",
        "every epoch repeats the first epoch's order",
        "test_data.py::test_batch_stream_order_depends_only_on_seed_epoch_and_position",
    ),
    # --- validation -----------------------------------------------------------------------------
    m(
        "updates_unchecked",
        VALIDATE,
        '    _choice(train.updates, "train.updates", ("alternating", "simultaneous", "g_first"))',
        "    pass",
        "a misspelt train.updates silently trains alternating",
        f"{T_VAL}::test_bad_value_is_refused_naming_key_and_value[train.updates=sideways]",
        "test_config.py::test_validation_messages",
    ),
    m(
        "on_nonfinite_unchecked",
        VALIDATE,
        '    _choice(train.on_nonfinite, "train.on_nonfinite", ("stop", "skip"))',
        "    pass",
        "a misspelt train.on_nonfinite silently stops",
        f"{T_VAL}::test_bad_value_is_refused_naming_key_and_value[train.on_nonfinite=ignore]",
        "test_config.py::test_validation_messages",
    ),
    m(
        "ckpt_every_unchecked",
        VALIDATE,
        '            yield f"{prefix}{name}"',
        '            yield f"{prefix}{name}" if prefix != "ckpt." else "log.every"',
        "ckpt.every=0 fails mid-run (modulo by zero) instead of before training",
        f"{T_VAL}::test_bad_value_is_refused_naming_key_and_value[ckpt.every=0]",
        "test_config.py::test_validation_messages",
    ),
    m(
        "bn_stats_unchecked",
        VALIDATE,
        '    _choice(cfg.sample.bn_stats, "sample.bn_stats", ("batch", "running"))',
        "    pass",
        "a misspelt sample.bn_stats silently samples in eval mode",
        f"{T_VAL}::test_bad_value_is_refused_naming_key_and_value[sample.bn_stats=mean]",
        "test_config.py::test_validation_messages",
    ),
    m(
        "ckpt_keep_unchecked",
        VALIDATE,
        '    _non_negative(cfg.ckpt.keep, "ckpt.keep", integer=True)',
        "    pass",
        "ckpt.keep=-1 is accepted",
        f"{T_VAL}::test_bad_value_is_refused_naming_key_and_value[ckpt.keep=-1]",
        "test_config.py::test_validation_messages",
    ),
    m(
        "eval_mode_unchecked",
        VALIDATE,
        '        _choice(mode, "eval.mode", ("min", "max"))',
        "        pass",
        "a misspelt eval.mode silently minimises",
        f"{T_VAL}::test_bad_value_is_refused_naming_key_and_value[eval.mode=median]",
        "test_config.py::test_validation_messages",
    ),
    m(
        "compile_unchecked",
        VALIDATE,
        '    _choice(hw.compile, "hardware.compile", COMPILE_CHOICES)',
        "    pass",
        "a misspelt hardware.compile reaches torch.compile mid-build",
        f"{T_VAL}::test_bad_value_is_refused_naming_key_and_value[hardware.compile=fast]",
        "test_config.py::test_validation_messages",
    ),
    m(
        "reg_decay_unchecked",
        REGS,
        '        schema.in_interval("decay", decay, "[0, 1)")\n',
        "",
        "LeCam's reg.lecam.decay outside [0, 1) is not refused by name (its constructor owns it)",
        f"{T_VAL}::test_bad_value_is_refused_naming_key_and_value[reg=lecam reg.lecam.decay=-0.5]",
        "test_schema.py::test_pre_flight_and_python_api_refuse_with_the_same_line",
    ),
    m(
        "new_group_unchecked",
        "src/ganx/overrides.py",
        "            groups.append(words[-1])",
        '            if words[-1] != "logger":\n                groups.append(words[-1])',
        "a config group missing from the command-line check: the README's logger=[...] refused",
        "test_readme_commands.py::test_readme_command_passes_the_check_and_composes",
        "test_readme_commands.py::test_every_config_folder_is_a_checked_group",
    ),
    # --- augmentation and limited data -----------------------------------------------------------
    m(
        "ada_p_sign_flipped",
        "src/ganx/augment.py",
        "torch.sign(r_t - self.target)",
        "torch.sign(self.target - r_t)",
        "ADA lowers p when D over-fits (r_t above the target) and raises it otherwise",
        "test_augment.py::test_ada_p_rises_when_d_over_fits_and_falls_otherwise",
    ),
    m(
        "augment_skipped_on_g_fakes",
        STEP,
        "G, D = parts.generator_fast, augmented(parts.discriminator_fast, parts.augment)",
        "G, D = parts.generator_fast, parts.discriminator_fast",
        "G's step shows D its fakes un-augmented (D learns on augmented fakes only)",
        "test_augment.py::test_g_step_sees_augmented_fakes_and_its_gradient_flows_through",
    ),
    m(
        "r1_not_through_augmentation",
        STEP,
        "    D = augmented(parts.discriminator, parts.augment)\n",
        "    D = parts.discriminator\n",
        "on penalty steps D's loss and R1 see the un-augmented reals",
        "test_augment.py::test_r1_is_taken_through_the_augmentation_as_the_authors_do",
    ),
    m(
        "augment_state_not_restored",
        STATE,
        "            self.parts.augment.load_state_dict(saved)",
        "            pass",
        "a resumed run draws other augmentations (and restarts ADA's p) than a straight one",
        "test_augment.py::test_resume_is_bitwise_exact_with_augmentation",
    ),
    m(
        "subset_ignores_its_seed",
        "src/ganx/data/__init__.py",
        "    gen = torch.Generator().manual_seed(seed)\n    chosen = []",
        "    gen = torch.Generator().manual_seed(0)\n    chosen = []",
        "dataset.subset_seed changes nothing: every subset is the one of seed 0",
        "test_limited_data.py::test_subset_is_class_balanced_and_fixed_by_its_own_seed",
    ),
    # --- run dirs ------------------------------------------------------------------------------
    m(
        "run_dir_not_locked",
        LOOP,
        "rundir.held(run_dir) if ranks.is_main else contextlib.nullcontext(lambda: None)",
        "contextlib.nullcontext(lambda: None)",
        "a second process (the Python API, bench_quality) trains in a run dir a live run holds",
        "test_run_dirs.py::test_a_run_dir_in_use_is_refused_before_anything_is_written",
    ),
    m(
        "run_dir_in_use_checked_late",
        "src/ganx/preflight.py",
        "    rundir.check_not_in_use(run_dir, key)\n",
        "",
        "ganx-train records its invocation (or moves the live run aside) before it is refused",
        "test_run_dirs.py::test_a_run_dir_in_use_is_refused_before_anything_is_written",
    ),
]

# --- issue 30's patterns: a key ignored where its default coincides, a guarantee only slow tests
# saw, resume of non-default state, net structure, metric settings -------------------------------
T_NONDEF = "test_nondefault_settings.py"
T_FAST = "test_fast_guarantees.py"
T_RESUME_ND = "test_resume_nondefault.py"
T_NETS = "test_net_structure.py"
T_METRIC_SET = "test_metric_settings.py"
MUTATIONS += [
    m(
        "g_optimiser_built_from_d_settings",
        "src/ganx/build.py",
        '    opt_g = build_optimizer("optim.g", cfg.optim.g, generator.parameters(), **extra)',
        '    opt_g = build_optimizer("optim.g", cfg.optim.d, generator.parameters(), **extra)',
        "G trains with D's learning rate and betas (equal by default, so only a test that sets "
        "them apart sees it)",
        f"{T_NONDEF}::test_g_and_d_get_their_own_learning_rates_and_betas",
    ),
    m(
        "lsgan_g_target_is_b",
        LOSSES,
        "        return 0.5 * ((fake_logits - self.c) ** 2).mean()",
        "        return 0.5 * ((fake_logits - self.b) ** 2).mean()",
        "LSGAN's G aims at b instead of c (both 1 by default)",
        f"{T_NONDEF}::test_lsgan_targets_a_b_c_each_reach_their_term",
    ),
    m(
        "gp_sigmoid_output_ignored",
        REGS,
        "            out = torch.sigmoid(out)",
        "            pass",
        "reg.gp.output=sigmoid penalises the logit's gradient",
        f"{T_NONDEF}::test_gradient_penalty_target_output_weight_interval",
    ),
    m(
        "lecam_never_debiased",
        REGS,
        "        correction = 1.0 - self.decay**self.updates",
        "        correction = 1.0",
        "reg.lecam.zero_debias=true leaves the anchors biased towards 0",
        f"{T_NONDEF}::test_lecam_interval_and_zero_debias",
    ),
    m(
        "elapsed_time_restarts_on_resume",
        OUTPUTS,
        "        self.started = time.time() - elapsed_s",
        "        self.started = time.time()",
        "a resumed run's time_s and wall time start again from 0",
        f"{T_FAST}::test_elapsed_time_continues_across_a_resume",
    ),
    m(
        "signal_reported_as_finished",
        LOOP,
        '                    status = "interrupted"',
        '                    status = "finished"',
        "a run stopped by SIGTERM says finished in status.json",
        f"{T_FAST}::test_a_sigterm_mid_run_checkpoints_that_step_and_marks_the_run_interrupted",
    ),
    m(
        "first_config_overwritten_on_resume",
        "src/ganx/rundir.py",
        '    if not (hydra_dir / "config.yaml").exists():',
        "    if True:",
        ".hydra/config.yaml is replaced by each resume's config",
        f"{T_FAST}::test_each_invocation_is_recorded_and_the_first_config_kept",
    ),
    m(
        "sample_tool_ignores_seed",
        "src/ganx/commands/sample.py",
        "    seed = cfg.seed\n",
        "    seed = None\n",
        "ganx-sample seed=7 draws the evaluation noise instead",
        f"{T_FAST}::test_the_sampling_tools_seed_draws_the_apis_noise",
    ),
    m(
        "grad_scaler_not_restored",
        STATE,
        "            self.scaler.load_state_dict(saved)",
        "            pass",
        "an fp16 run resumes with a fresh GradScaler (scale 65536) instead of its own",
        f"{T_RESUME_ND}::test_fp16_grad_scaler_resumes_bitwise",
    ),
    m(
        "dcgan_batchnorm_scale_ones",
        "src/ganx/nets/dcgan.py",
        "            nn.init.normal_(m.weight, 1.0, 0.02)",
        "            nn.init.ones_(m.weight)",
        "DCGAN's BatchNorm scales start at 1 instead of N(1, 0.02)",
        f"{T_NETS}::test_dcgan_weights_are_normal_0_02_and_batchnorm_scales_normal_1_0_02",
    ),
    m(
        "sngan_d_linear_without_spectral_norm",
        "src/ganx/nets/sngan.py",
        "maybe_spectral_norm(xavier(nn.Linear(self.global_width, 1), 1.0), sn)",
        "xavier(nn.Linear(self.global_width, 1), 1.0)",
        "SNGAN's D leaves its last layer unnormalised",
        f"{T_NETS}::test_spectral_norm_on_every_d_layer_exactly_when_configured",
    ),
    m(
        "sngan_residual_gain_one",
        "src/ganx/nets/sngan.py",
        "        self.conv1 = xavier(nn.Conv2d(width_in, width_out, 3, 1, 1), math.sqrt(2))",
        "        self.conv1 = xavier(nn.Conv2d(width_in, width_out, 3, 1, 1), 1.0)",
        "SNGAN's G blocks start with Xavier gain 1 instead of sqrt(2)",
        f"{T_NETS}::test_residual_convs_xavier_gain_sqrt2_shortcuts_and_ends_gain_1",
    ),
    m(
        "he_normal_init_as_pytorch_default",
        "src/ganx/nets/mlp.py",
        "        nn.init.normal_(layer.weight, std=math.sqrt(2.0 / layer.in_features))",
        "        pass",
        "model=dragan_mlp keeps PyTorch's init for its weights",
        f"{T_NETS}::test_dragan_mlp_is_he_normal_and_mlp_pytorchs_default",
    ),
    m(
        "kid_subset_size_ignored",
        "src/ganx/metrics/fidelity.py",
        "            size = min(kid_subset_size, n, len(real[feat_layer]))",
        "            size = min(n, len(real[feat_layer]))",
        "KID uses every sample in each subset whatever metrics.kid_subset_size says",
        f"{T_METRIC_SET}::test_kid_uses_the_configured_subset_size_as_torch_fidelity_does",
    ),
    m(
        "real_count_ignored",
        "src/ganx/metrics/fidelity.py",
        "min(real_count or n, len(source))",
        "min(n, len(source))",
        "FID compares with as many real images as samples, whatever metrics.real_count says",
        f"{T_METRIC_SET}::test_real_count_sets_how_many_real_images_fid_compares_with",
    ),
    m(
        "feature_chunks_ignore_batch_size",
        "src/ganx/metrics/fidelity.py",
        "        for chunk in images_uint8.split(self.batch_size):",
        "        for chunk in images_uint8.split(256):",
        "metrics.batch_size does not bound the feature network's batches",
        f"{T_METRIC_SET}::test_metrics_batch_size_sets_the_extractors_chunks",
    ),
    m(
        "mode_threshold_a_quarter",
        "src/ganx/metrics/registry.py",
        "    threshold = 0.2 * len(samples) / len(centres)",
        "    threshold = 0.25 * len(samples) / len(centres)",
        "a mode needs 25% of its uniform share to count, not PacGAN's 20%",
        f"{T_METRIC_SET}::test_modes_are_identified_by_nearest_centre_and_a_20_percent_share",
    ),
]

BROKEN_PROBE = Mutation(
    "_probe_subprocess_sees_mutant",
    "src/ganx/train.py",
    '    handle_version("ganx-train")\n',
    "    raise SystemExit('ganx mutant probe')\n",
    "ganx-train exits at once: a subprocess-only test must see it",
    ("test_config.py::test_bad_value_gives_one_clear_message",),
)


class MutationError(RuntimeError):
    pass


def package_copy(into: Path) -> Path:
    """Copy src/ganx (with conf/ as ganx/conf, as the installed package has it) into ``into``
    (the folder for PYTHONPATH); returns the copy's ``ganx`` folder."""
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "src" / "ganx", into / "ganx", ignore=ignore)
    shutil.copytree(ROOT / "conf", into / "ganx" / "conf", ignore=ignore)
    return into / "ganx"


def in_copy(package: Path, file: str) -> Path | None:
    """Where a repository file (``src/ganx/x.py``, ``conf/x.yaml``) is in a :func:`package_copy`
    (``package``: its ``ganx`` folder); None for a file outside the package."""
    relative = Path(file)
    if relative.parts[:2] == ("src", "ganx"):
        return package / Path(*relative.parts[2:])
    if relative.parts[0] == "conf":
        return package / "conf" / Path(*relative.parts[1:])
    return None


def mutated_package(mutation: Mutation, into: Path) -> None:
    """:func:`package_copy` into ``into``, with ``mutation`` applied to the copy."""
    target = in_copy(package_copy(into), mutation.file)
    if target is None:
        raise MutationError(f"{mutation.name}: {mutation.file} is not part of the package")
    text = target.read_text()
    count = text.count(mutation.old)
    if count != 1:
        raise MutationError(
            f"{mutation.name}: the snippet occurs {count} times in {mutation.file} (needs exactly "
            "once): update the mutation to the current code"
        )
    target.write_text(text.replace(mutation.old, mutation.new))


# with --whole-files, where a suite lacks one of these files, the file that covered its area
AREA_FILES = {
    T_PROP: T_TRAIN,
    T_VAL: "test_config.py",
    T_RANKS: "test_distributed.py",
}


def select_tests(mutation: Mutation, tests_dir: Path, whole_files: bool = False) -> list[str]:
    """The mutation's node ids that exist in ``tests_dir`` (all of them for ganx's own tests);
    with ``whole_files``, every file they name (or its area's file) in full instead."""
    chosen: list[str] = []
    for node in mutation.tests:
        file, _, func = node.partition("::")
        if whole_files:
            for name in (file, AREA_FILES.get(file)):
                if name and (tests_dir / name).is_file() and str(tests_dir / name) not in chosen:
                    chosen.append(str(tests_dir / name))
                    break
            continue
        path = tests_dir / file
        if not path.is_file():
            continue
        name = func.split("[")[0]
        if name and not re.search(rf"^def {re.escape(name)}\(", path.read_text(), re.M):
            continue
        chosen.append(f"{path}::{func}" if func else str(path))
    return chosen


def run_pytest(
    nodes: list[str], package_dir: Path | None, cwd: Path, timeout: int
) -> tuple[int, str]:
    env = dict(os.environ)
    if package_dir is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(package_dir), *filter(None, [env.get("PYTHONPATH")])]
        )
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-x",
        "-m",
        "not slow",
        "-p",
        "no:cacheprovider",
        "--no-header",
        "-rN",
        *nodes,
    ]
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return -1, "timed out"
    return proc.returncode, proc.stdout + proc.stderr


def check_one(
    mutation: Mutation, tests_dir: Path, timeout: int, whole_files: bool = False
) -> tuple[str, str]:
    """'caught', 'missed', or 'ERROR', and a one-line detail."""
    nodes = select_tests(mutation, tests_dir, whole_files)
    if not nodes:
        return "missed", "no test in this suite guards it"
    with tempfile.TemporaryDirectory(prefix="ganx_mutant_") as tmp:
        try:
            mutated_package(mutation, Path(tmp))
        except MutationError as err:
            return "ERROR", str(err)
        code, out = run_pytest(nodes, Path(tmp), tests_dir.parent, timeout)
    lines = [x for x in out.strip().splitlines() if x.strip()]
    summary = lines[-1] if lines else ""
    if code in (1, 2):  # tests failed (2: the mutant broke collection, e.g. an import)
        return "caught", summary
    if code == 0:
        return "missed", summary
    if code == -1:
        return "ERROR", f"timed out after {timeout} s"
    return "ERROR", f"pytest exit code {code}: {summary}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="mutations to run (default: all)")
    parser.add_argument("--list", action="store_true", help="print the mutations and exit")
    parser.add_argument(
        "--tests-dir",
        type=Path,
        default=ROOT / "tests",
        help="the test suite to score (default: tests/); tests it lacks are skipped",
    )
    parser.add_argument(
        "--whole-files",
        action="store_true",
        help="run every test file a mutation names (or the file of its area) in full: a fair "
        "selection for a suite whose tests have other names",
    )
    parser.add_argument("--timeout", type=int, default=600, help="seconds per mutation")
    parser.add_argument(
        "--no-probe", action="store_true", help="skip the check that subprocesses see the mutant"
    )
    args = parser.parse_args(argv)
    names = [x.name for x in MUTATIONS]
    if len(set(names)) != len(names):
        raise SystemExit("mutants.py: duplicate mutation names")
    if args.list:
        for mut in MUTATIONS:
            print(f"{mut.name:34s} {mut.file:28s} {mut.breaks}")
        return 0
    unknown = [n for n in args.names if n not in names]
    if unknown:
        raise SystemExit(f"mutants.py: unknown mutation(s) {unknown}; see --list")
    chosen = [x for x in MUTATIONS if not args.names or x.name in args.names]
    tests_dir = args.tests_dir.resolve()

    if not args.no_probe:  # the copy must be what every test process imports
        status, detail = check_one(BROKEN_PROBE, ROOT / "tests", args.timeout)
        if status != "caught":
            raise SystemExit(f"mutants.py: the probe mutant was not seen ({status}: {detail})")
        print(f"probe: a CLI subprocess imports the mutated copy ({detail})")

    results = {}
    started = time.time()
    for mut in chosen:
        t0 = time.time()
        status, detail = check_one(mut, tests_dir, args.timeout, args.whole_files)
        results[mut.name] = status
        print(f"{status:7s} {mut.name:34s} {time.time() - t0:6.1f}s  {detail}", flush=True)
    caught = sum(s == "caught" for s in results.values())
    errors = [n for n, s in results.items() if s == "ERROR"]
    missed = [n for n, s in results.items() if s == "missed"]
    print(
        f"\nscore: {caught}/{len(results)} caught ({time.time() - started:.0f} s); "
        f"missed: {missed or 'none'}; errors: {errors or 'none'}"
    )
    return 0 if caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
