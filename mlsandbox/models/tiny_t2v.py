"""``tiny-t2v``: a small text-to-video diffusion proxy trained from scratch on a pool's clips.

The network follows the EasyAnimate / Latte recipe at toy scale: a video diffusion transformer
(diffusers' ``LatteTransformer3DModel``: patch embeddings per frame, alternating spatial and
temporal attention blocks, cross-attention to the caption, adaLN-single timestep conditioning)
predicts the noise that a DDPM schedule (diffusers' ``DDPMScheduler``, cosine betas) added to a
clip, given the caption as encoded by a small BERT (transformers' ``BertModel``) that trains with
it. Captions use the dataset's byte-level BPE tokenizer of ``tiny-lm``
(:mod:`~mlsandbox.models.bpe_tokenizer`), clips are decoded once per job and resampled to
``frames x frame_size x frame_size`` pixels (:mod:`~mlsandbox.models.video_clips`): pixel space
at this size is the model's latent. A share ``cond_dropout`` of training captions is replaced by
the empty caption, so that generation can use classifier-free guidance. Training is the shared
loop of :mod:`~mlsandbox.models.torch_training`, seeded and deterministic on CPU.

On a benchmark of (clip, caption) pairs the model reports:

* ``denoise_loss``: the mean squared error of the predicted noise, averaged over the clips and
  the fixed ``eval_timesteps``, with noise drawn from a fixed seed (the same for every model of
  a given clip shape): the conditional denoising loss that diffusion training minimises, a
  continuous held-out metric;
* ``score = 1 / denoise_loss``, the primary, higher-is-better metric used for deltas;
* ``retrieval_acc``: for each of the first ``retrieval_clips`` clips, its own caption and
  ``retrieval_candidates - 1`` other captions (a fixed draw, never the same text) are ranked by
  the clip's denoising loss given each (same timesteps and noise); the share of clips whose own
  caption gives the lowest loss (a diffusion classifier; chance ``1 / retrieval_candidates``);
* on ``generate_clips`` clips generated from the first captions (DDIM, ``sample_steps`` steps,
  guidance ``guidance_scale``, fixed starting noise), the VBench-style dimensions of
  :mod:`~mlsandbox.models.video_quality`: ``temporal_flickering``, ``motion_smoothness``,
  ``dynamic_degree`` and ``alignment_acc`` (text-video alignment by retrieval).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlsandbox.errors import EvaluationError, TrainingError
from mlsandbox.models.base import Benchmark, Trainer, TrainingJob
from mlsandbox.models.bpe_tokenizer import dataset_tokenizer, eot_id
from mlsandbox.models.tiny_captioner import caption_sequences, retrieval_candidates
from mlsandbox.models.torch_training import (
    LoopSettings,
    LossFn,
    TorchModel,
    padded,
    step_budget,
    torch_runtime,
    train_loop,
)
from mlsandbox.models.video_clips import VideoClips, to_pixels
from mlsandbox.models.video_quality import alignment_accuracy, dynamic_degree, motion_smoothness, temporal_flickering
from mlsandbox.pretrained import quiet_transformers
from mlsandbox.spec import TinyT2VSpec

if TYPE_CHECKING:
    import torch

#: Seed of the benchmark noise: every model is scored on the same noisy clips.
EVAL_SEED = 0
#: Seed of the starting noise of generated clips.
GENERATION_SEED = 1
#: Added to the cross-attention scores of caption padding: masked out.
_MASKED = -10_000.0


# --- network --------------------------------------------------------------------------------


def require_diffusers() -> Any:
    """The diffusers package (the video transformer and the noise schedulers), or a clear error."""
    try:
        import diffusers
    except ImportError:
        raise TrainingError("tiny-t2v needs diffusers: pip install 'mlsandbox[video]'") from None
    diffusers.utils.logging.set_verbosity_error()
    return diffusers


def build_network(spec: TinyT2VSpec, vocab_size: int) -> Any:
    """A randomly initialised BERT text encoder and Latte video transformer (call after seeding)."""
    import torch
    from transformers import BertConfig, BertModel

    diffusers = require_diffusers()
    quiet_transformers()
    text = BertModel(BertConfig(
        vocab_size=vocab_size,
        hidden_size=spec.text_width,
        num_hidden_layers=spec.text_layers,
        num_attention_heads=spec.n_head,
        intermediate_size=4 * spec.text_width,
        max_position_embeddings=spec.max_caption_tokens + 2,
        type_vocab_size=1,
        hidden_dropout_prob=spec.dropout,
        attention_probs_dropout_prob=spec.dropout,
        pad_token_id=None,  # id 0 is the end-of-text token that opens and closes captions: it must train
    ), add_pooling_layer=False)
    denoiser = diffusers.LatteTransformer3DModel(
        num_attention_heads=spec.n_head,
        attention_head_dim=spec.n_embd // spec.n_head,
        in_channels=3,
        out_channels=3,
        num_layers=spec.n_layer,
        dropout=spec.dropout,
        cross_attention_dim=spec.n_embd,
        sample_size=spec.frame_size,
        patch_size=spec.patch_size,
        activation_fn="gelu-approximate",
        norm_type="ada_norm_single",
        caption_channels=spec.text_width,
        video_length=spec.frames,
    )
    parts: dict[str, Any] = {"text_encoder": text, "denoiser": denoiser}
    return torch.nn.ModuleDict(parts)


def noise_schedule(spec: TinyT2VSpec) -> Any:
    """The DDPM forward process the model is trained on: cosine betas over ``diffusion_steps``."""
    return require_diffusers().DDPMScheduler(num_train_timesteps=spec.diffusion_steps, beta_schedule="squaredcos_cap_v2")


def encode_captions(net: Any, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-token caption states ``[B, L, text_width]`` of the BERT encoder."""
    return net["text_encoder"](input_ids=ids, attention_mask=mask.long()).last_hidden_state


def predict_noise(net: Any, noisy: torch.Tensor, t: torch.Tensor, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The denoiser's noise prediction for ``noisy`` clips ``[B, 3, T, S, S]`` at timesteps ``t``.

    Latte's spatial blocks attend to the caption once per frame, so the padding mask is given per
    frame, as additive scores (0 keep, a large negative number drop).
    """
    frames = int(noisy.shape[2])
    bias = (~mask).float().mul(_MASKED).unsqueeze(1).repeat_interleave(frames, dim=0)
    return net["denoiser"](noisy, timestep=t, encoder_hidden_states=states, encoder_attention_mask=bias).sample


# --- evaluation -----------------------------------------------------------------------------


def fixed_noise(n_clips: int, n_steps: int, shape: Sequence[int]) -> torch.Tensor:
    """Noise ``[n_clips, n_steps, *shape]`` from :data:`EVAL_SEED`: identical for every model."""
    import torch

    return torch.randn((n_clips, n_steps, *shape), generator=torch.Generator().manual_seed(EVAL_SEED))


def pair_losses(
    net: Any,
    spec: TinyT2VSpec,
    x0: torch.Tensor,
    seqs: Sequence[Sequence[int]],
    pairs: Sequence[tuple[int, int]],
    timesteps: Sequence[int],
) -> list[float]:
    """Denoising MSE of clip ``c`` given caption ``k``, averaged over ``timesteps``, for every ``(c, k)``.

    Each clip has its own fixed noise per timestep, shared by all the captions it is paired with, so
    two captions of one clip differ only by what the caption changes.
    """
    import torch

    schedule = noise_schedule(spec)
    noise = fixed_noise(int(x0.shape[0]), len(timesteps), x0.shape[1:])
    ids, mask = padded(seqs)
    items = [(p, s) for p in range(len(pairs)) for s in range(len(timesteps))]
    totals = [0.0] * len(pairs)
    net.eval()
    with torch.inference_mode():
        states = torch.cat([encode_captions(net, ids[i : i + 256], mask[i : i + 256]) for i in range(0, len(seqs), 256)])
        for start in range(0, len(items), spec.eval_batch_size):
            chunk = items[start : start + spec.eval_batch_size]
            clip = torch.tensor([pairs[p][0] for p, _ in chunk])
            caption = torch.tensor([pairs[p][1] for p, _ in chunk])
            step = torch.tensor([s for _, s in chunk])
            t = torch.tensor(timesteps, dtype=torch.long)[step]
            eps = noise[clip, step]
            noisy = schedule.add_noise(x0[clip], eps, t)
            pred = predict_noise(net, noisy, t, states[caption], mask[caption])
            for (p, _), err in zip(chunk, (pred - eps).pow(2).flatten(1).mean(1).tolist()):
                totals[p] += err
    return [total / len(timesteps) for total in totals]


def generate(net: Any, spec: TinyT2VSpec, seqs: Sequence[Sequence[int]], empty: Sequence[int]) -> torch.Tensor:
    """Clips ``[G, 3, T, S, S]`` generated from captions by DDIM with classifier-free guidance."""
    import torch

    sampler = require_diffusers().DDIMScheduler.from_config(noise_schedule(spec).config)
    sampler.set_timesteps(spec.sample_steps)
    g = len(seqs)
    shape = (g, 3, spec.frames, spec.frame_size, spec.frame_size)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(GENERATION_SEED))
    ids, mask = padded([*seqs, *([empty] * g)])
    net.eval()
    with torch.inference_mode():
        states = encode_captions(net, ids, mask)
        for t in sampler.timesteps:
            x = sampler.step(guided_noise(net, spec, x, t, states, mask), t, x).prev_sample
    return x


def guided_noise(net: Any, spec: TinyT2VSpec, x: torch.Tensor, t: torch.Tensor, states: torch.Tensor,
                 mask: torch.Tensor) -> torch.Tensor:
    """``uncond + guidance_scale * (cond - uncond)``; rows ``g + i`` of ``states`` are clip ``i``'s empty caption."""
    import torch

    g = int(x.shape[0])
    out = []
    for i in range(0, g, spec.eval_batch_size):
        j = min(i + spec.eval_batch_size, g)
        both = torch.cat([torch.arange(i, j), torch.arange(g + i, g + j)])
        pred = predict_noise(net, torch.cat([x[i:j]] * 2), t.expand(2 * (j - i)), states[both], mask[both])
        cond, uncond = pred.chunk(2)
        out.append(uncond + spec.guidance_scale * (cond - uncond))
    return torch.cat(out)


class TinyT2V(TorchModel):
    """A trained tiny text-to-video model (text encoder and video transformer) with its tokenizer."""

    type = "tiny-t2v"
    spec_class = TinyT2VSpec
    spec: TinyT2VSpec

    def bits_per_byte(self, texts: Sequence[str]) -> float:
        raise EvaluationError(
            "tiny-t2v scores clips given their captions, and texts alone have none: "
            "evaluate it on video-text benchmarks (set the benchmark's video_field)"
        )

    def benchmark_metrics(self, benchmark: Benchmark) -> dict[str, float]:
        """``denoise_loss`` and ``score``, ``retrieval_acc``, and the VBench-style dimensions of generated clips."""
        import torch

        if benchmark.videos is None:
            raise EvaluationError(
                f"benchmark {benchmark.name!r} has no videos; tiny-t2v needs video-text benchmarks: "
                "set the benchmark's video_field"
            )
        keep = [i for i, t in enumerate(benchmark.texts) if t]
        if not keep:
            raise EvaluationError(f"benchmark {benchmark.name!r} has no non-empty captions")
        captions = [benchmark.texts[i] for i in keep]
        videos = [benchmark.videos[i] for i in keep]
        spec = self.spec
        clips = VideoClips(videos, spec.frames, spec.frame_size, EvaluationError)
        x0 = clips.batch(torch.arange(len(videos)))
        seqs = caption_sequences(self.tokenizer, captions, spec.max_caption_tokens)
        n = len(captions)
        metrics: dict[str, float] = {}
        with torch_runtime(spec.threads):
            loss = sum(pair_losses(self.model, spec, x0, seqs, [(c, c) for c in range(n)], spec.eval_timesteps)) / n
            if not math.isfinite(loss) or loss <= 0:
                raise EvaluationError(f"benchmark {benchmark.name!r}: denoising loss {loss!r} is not a positive number")
            metrics.update(denoise_loss=loss, score=1.0 / loss)
            accuracy = self._retrieval(x0, seqs, captions, min(spec.retrieval_clips, n))
            if accuracy is not None:
                metrics["retrieval_acc"] = accuracy
            if spec.generate_clips:
                metrics.update(self._generated(clips, seqs, videos, min(spec.generate_clips, n)))
        return metrics

    def _retrieval(self, x0: torch.Tensor, seqs: list[list[int]], captions: list[str], queries: int) -> float | None:
        """Share of the first ``queries`` clips whose own caption denoises them best among the candidates;
        None when no clip has a caption to compete with (one distinct caption, or no queries)."""
        spec = self.spec
        candidates = retrieval_candidates([c.encode() for c in captions], spec.retrieval_candidates)[:queries]
        pairs = [(c, k) for c, cands in enumerate(candidates) for k in cands]
        losses = pair_losses(self.model, spec, x0, seqs, pairs, spec.retrieval_timesteps)
        wins, counted, pos = 0, 0, 0
        for cands in candidates:
            own, others = losses[pos], losses[pos + 1 : pos + len(cands)]
            pos += len(cands)
            if others:  # a caption without a distinct rival cannot be retrieved
                counted += 1
                wins += all(own < other for other in others)
        return wins / counted if counted else None

    def _generated(self, clips: VideoClips, seqs: list[list[int]], videos: list[bytes], g: int) -> dict[str, float]:
        spec = self.spec
        eot = eot_id(self.tokenizer)
        frames = to_pixels(generate(self.model, spec, seqs[:g], [eot, eot]))
        real = clips.pixels[clips.index].permute(0, 1, 3, 4, 2).numpy()
        candidates = retrieval_candidates(videos, spec.retrieval_candidates)[:g]
        metrics = {
            "temporal_flickering": temporal_flickering(frames),
            "dynamic_degree": dynamic_degree(frames),
            "alignment_acc": alignment_accuracy(frames, real, candidates),
        }
        if spec.frames >= 3:  # smoothness re-creates a frame from its two neighbours
            metrics["motion_smoothness"] = motion_smoothness(frames)
        return metrics

    def _save_payload(self, directory: Path) -> None:
        quiet_transformers()
        self.model["text_encoder"].save_pretrained(directory / self.weights / "text_encoder")
        self.model["denoiser"].save_pretrained(directory / self.weights / "denoiser")
        self.tokenizer.save(str(directory / "tokenizer.json"))

    @classmethod
    def load_network(cls, path: Path, spec: TinyT2VSpec, info: dict[str, Any]) -> Any:
        import torch
        from transformers import BertModel

        parts: dict[str, Any] = {
            "text_encoder": BertModel.from_pretrained(path / "text_encoder", add_pooling_layer=False),
            "denoiser": require_diffusers().LatteTransformer3DModel.from_pretrained(path / "denoiser"),
        }
        return torch.nn.ModuleDict(parts)


# --- training -------------------------------------------------------------------------------


def denoising_loss(net: Any, spec: TinyT2VSpec, clips: VideoClips, ids: torch.Tensor, mask: torch.Tensor,
                   empty: Sequence[int]) -> LossFn:
    """The training loss: noise-prediction MSE at uniform random timesteps for a batch of pair indices,
    with a share ``cond_dropout`` of captions swapped for the empty caption."""
    import torch

    schedule = noise_schedule(spec)
    lengths = mask.sum(dim=1)
    empty_ids = torch.tensor(list(empty), dtype=torch.long)

    def loss(samples: torch.Tensor) -> torch.Tensor:
        width = int(lengths[samples].max())
        batch_ids, batch_mask = ids[samples, :width].clone(), mask[samples, :width].clone()
        drop = torch.rand(len(samples)) < spec.cond_dropout
        if bool(drop.any()):
            batch_ids[drop] = 0
            batch_mask[drop] = False
            batch_ids[drop, : len(empty_ids)] = empty_ids
            batch_mask[drop, : len(empty_ids)] = True
        x0 = clips.batch(samples)
        t = torch.randint(0, spec.diffusion_steps, (len(samples),))
        eps = torch.randn_like(x0)
        pred = predict_noise(net, schedule.add_noise(x0, eps, t), t, encode_captions(net, batch_ids, batch_mask), batch_mask)
        return (pred - eps).pow(2).mean()

    return loss


class TinyT2VTrainer(Trainer):
    """Trains :class:`TinyT2V` models from a :class:`~mlsandbox.spec.TinyT2VSpec`.

    What is particular to it: training items are (clip, caption) pair indices, the loss is
    :func:`denoising_loss`, pairs are always shuffled, the budget is ``max_steps`` and/or
    ``epochs``, and intermediate scores are ``1 / training loss`` (a pool has no held-out clips).
    """

    type = "tiny-t2v"
    version = "1"
    spec: TinyT2VSpec

    def total_steps(self, n_pairs: int) -> int:
        """Optimizer steps for a pool of ``n_pairs`` under the spec's budget."""
        spec = self.spec
        epoch_steps = math.ceil(spec.epochs * n_pairs / spec.batch_size) if spec.epochs else None
        return step_budget(math.ceil(n_pairs / spec.batch_size), spec.max_steps, epoch_steps)

    def train(self, job: TrainingJob) -> TinyT2V:
        import torch

        if job.videos is None:
            raise TrainingError("tiny-t2v needs a video-text dataset: set dataset.video_field (or format: videos)")
        if not job.texts:
            raise TrainingError("tiny-t2v needs at least one (clip, caption) pair in the pool")
        spec = self.spec
        started = time.perf_counter()
        tokenizer, tok_path = dataset_tokenizer(job, spec)
        clips = VideoClips(job.videos, spec.frames, spec.frame_size)
        seqs = caption_sequences(tokenizer, job.texts, spec.max_caption_tokens)
        ids, mask = padded(seqs)
        decoded = time.perf_counter()
        settings = LoopSettings.from_spec(spec, self.total_steps(len(seqs)), shuffle=True)
        eot = eot_id(tokenizer)
        with torch_runtime(spec.threads, job.seed):
            net = build_network(spec, tokenizer.get_vocab_size())
            loss = denoising_loss(net, spec, clips, ids, mask, [eot, eot])
            final_loss = train_loop(net, torch.arange(len(seqs)), loss, settings, job.seed, lambda x: x, job.report)
        steps = settings.steps
        info = {
            "steps": steps,
            "pairs": len(seqs),
            "unique_clips": clips.n_unique,
            "epochs": steps * spec.batch_size / len(seqs),
            "final_loss": final_loss,
            "n_params": sum(p.numel() for p in net.parameters()),
            "vocab_size": tokenizer.get_vocab_size(),
            "tokenizer": tok_path.name,
            "decode_seconds": decoded - started,
            "train_seconds": time.perf_counter() - started,
        }
        return TinyT2V(spec, net, tokenizer, info=info)
