"""Synthetic voices: eSpeak NG (from the `espeakng-loader` wheel) driven through ctypes.

eSpeak NG synthesizes at its native 22,050 Hz; clips leave here as 16 kHz mono float32.

Determinism takes two measures, both found by experiment with the wheel's libespeak-ng 1.52:
- eSpeak NG seeds its noise generator from the clock when it initialises (breathy variants such
  as f2/f5 differ run to run), so every utterance first reseeds it (`espeak_ng_SetRandSeed`, and
  libc `srand`) with a seed drawn from the clip's own random stream;
- it also keeps hidden static state from one utterance to the next (it survives
  `espeak_Terminate`/`espeak_Initialize`), so an utterance's samples depend on what the same
  process synthesized before. A given sequence of calls in a fresh process is reproducible, so the
  corpus generator runs every fixed chunk of identities in a fresh process
  (`synthetic.generate_corpus`).
The library is not thread-safe either: use processes, never threads.
"""

from __future__ import annotations

import ctypes
import dataclasses
import threading

import numpy as np

SAMPLE_RATE = 16_000
ESPEAK_RATE = 22_050

# Voice variants shipped in espeak-ng-data/voices/!v, by gender (0 = male, 1 = female). Their
# order matters: a variant's position in its list drives the face's nose width (synthetic.py).
MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7")
FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5")
VARIANTS = (MALE_VARIANTS, FEMALE_VARIANTS)
ACCENTS = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland")

# Written for this corpus: varied English sentences, 6 to 15 words each.
SENTENCES = (
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Please remember to bring an umbrella, because the forecast calls for rain.",
    "My grandmother grew tomatoes, beans and sunflowers behind her small house.",
    "We missed the last train and had to walk home under the stars.",
    "Could you tell me how to get to the central library from here?",
    "The orchestra rehearsed for hours before the concert on Saturday night.",
    "A cup of strong coffee is the only thing that wakes me up.",
    "Seven children were playing football in the park after school.",
    "The museum opens at nine and closes early on public holidays.",
    "He painted the fence bright yellow, and the neighbours were not amused.",
    "If the bridge is closed, we will take the ferry across the bay.",
    "Our team finished the project two days ahead of the deadline.",
    "The old lighthouse still guides fishing boats back to the harbour.",
    "She learned to play the violin when she was only six years old.",
    "Fresh bread from the bakery smells wonderful on a cold morning.",
    "The mountain road twists and turns for nearly forty kilometres.",
    "Do not forget to water the plants while I am away next week.",
    "Thunder rolled across the valley as the storm moved slowly east.",
    "Their new puppy chewed through two pairs of shoes in one afternoon.",
    "The conference will discuss renewable energy and public transport.",
    "I would like a table for four by the window, please.",
    "The scientist carefully measured the temperature of each sample.",
    "Every summer the village holds a festival with music and dancing.",
    "He read the letter twice before he finally understood the message.",
    "The price of apples went up after the late spring frost.",
    "Turn left at the second traffic light and park behind the bank.",
    "Our flight was delayed for three hours because of heavy fog.",
    "The children built a sandcastle with towers, walls and a deep moat.",
    "Nobody expected the quiet student to win the chess tournament.",
    "A gentle breeze carried the scent of pine through the open window.",
    "The engineer explained how the new engine saves so much fuel.",
    "Let us meet at the corner cafe at half past ten tomorrow.",
    "The river froze solid during the coldest winter in fifty years.",
    "She keeps a notebook full of recipes from her travels abroad.",
    "Without a map, the hikers followed the stream down the hill.",
    "The baker wakes up at four every morning to prepare the dough.",
    "Bright lanterns lit the narrow streets of the old town at night.",
    "My brother fixed the broken bicycle with a few simple tools.",
    "The report shows that sales doubled in the last three months.",
    "Owls hunt mostly at night and sleep through the day.",
    "The garden looks beautiful now that the roses are in bloom.",
    "Please switch off your phone before the film begins.",
    "The captain announced that we would land in twenty minutes.",
    "Heavy snow blocked the pass, so the travellers waited in the inn.",
    "I found an old photograph of my parents hidden in a book.",
    "The market sells cheese, olives, honey and fresh fish every Friday.",
    "Learning a new language takes patience, practice and a little courage.",
    "The clock on the tower has not worked for many years.",
    "A small boat drifted slowly towards the rocky island in the mist.",
    "Students gathered in the hall to hear the famous writer speak.",
)

# espeak_AUDIO_OUTPUT, espeak_POSITION_TYPE, espeakCHARS_*, espeak_PARAMETER (speak_lib.h).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _VOLUME, _PITCH, _RANGE, _WORDGAP = 1, 2, 3, 4, 7


@dataclasses.dataclass(frozen=True)
class VoiceParams:
    """Everything eSpeak needs for one speaker, plus the clip post-processing noise."""

    accent: str          # an eSpeak English voice (noise)
    variant: str         # an eSpeak voice variant, e.g. "m3" or "f2" (follows gender)
    pitch: int           # espeakPITCH, 0..100: base pitch within the variant's range (follows age)
    pitch_range: int     # espeakRANGE, 0..100: intonation range (follows age)
    rate: int            # espeakRATE, words per minute (follows age)
    word_gap: int        # espeakWORDGAP, units of 10 ms (noise)
    snr_db: float        # added white noise (noise)
    peak: float          # peak amplitude of the clip (noise)
    tilt: float = 0.0    # spectral tilt in dB per octave about 1 kHz: the voice's brightness (a face link)

    @property
    def voice_name(self) -> str:
        return f"{self.accent}+{self.variant}"


class _ESpeak:
    """The one eSpeak NG instance of this process (synchronous output, samples via a callback)."""

    _lock = threading.Lock()
    _instance: "_ESpeak | None" = None

    def __init__(self):
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
        if rate != ESPEAK_RATE:
            raise RuntimeError(f"eSpeak NG failed to initialise (returned {rate}, expected {ESPEAK_RATE} Hz)")
        self._chunks: list[np.ndarray] = []

        def on_samples(wav, count, _events):
            if wav and count > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
            return 0

        callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
        self._callback = callback_type(on_samples)  # kept alive as long as the library may call it
        lib.espeak_SetSynthCallback(self._callback)
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self._libc = ctypes.CDLL(None)
        self.lib = lib

    @classmethod
    def get(cls) -> "_ESpeak":
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def speak(self, text: str, voice: VoiceParams, seed: int = 0) -> np.ndarray:
        """int16 samples at 22,050 Hz; `seed` seeds eSpeak's noise generator for this utterance."""
        with self._lock:
            self.lib.espeak_ng_SetRandSeed(int(seed) & 0x7FFFFFFF)
            self._libc.srand(ctypes.c_uint(int(seed) & 0x7FFFFFFF))
            if self.lib.espeak_SetVoiceByName(voice.voice_name.encode()) != 0:
                raise ValueError(f"eSpeak NG has no voice {voice.voice_name!r}")
            for parameter, value in ((_RATE, voice.rate), (_VOLUME, 100), (_PITCH, voice.pitch),
                                     (_RANGE, voice.pitch_range), (_WORDGAP, voice.word_gap)):
                self.lib.espeak_SetParameter(parameter, int(value), 0)
            self._chunks = []
            data = text.encode("utf-8")
            status = self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            if status != 0:
                raise RuntimeError(f"espeak_Synth failed with status {status}")
            chunks, self._chunks = self._chunks, []
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)


def _trim(x: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    loud = np.flatnonzero(np.abs(x) > threshold * (np.abs(x).max() + 1e-9))
    return x[loud[0]:loud[-1] + 1] if len(loud) else x[:0]


def to_16k(x: np.ndarray, rate: int = ESPEAK_RATE) -> np.ndarray:
    """Resample float audio to 16 kHz by band-limited FFT resampling (NumPy only).

    Exact for a signal that starts and ends in silence, which every synthesized clip does
    (leading silence and a trailing pause); a raised-cosine roll-off from 7.2 to 8 kHz keeps
    the cut free of ringing. (scipy.signal would cost each fresh worker process 0.5 s to import.)
    """
    x = np.asarray(x, np.float64)
    if rate == SAMPLE_RATE or not len(x):
        return x.astype(np.float32)
    from math import gcd

    up, down = SAMPLE_RATE // gcd(SAMPLE_RATE, rate), rate // gcd(SAMPLE_RATE, rate)
    n_in = -(-len(x) // down) * down            # zero-pad to a whole number of output samples
    n_out = n_in // down * up
    spectrum = np.fft.rfft(x, n_in)
    bins = n_out // 2 + 1
    kept = np.zeros(bins, np.complex128)
    kept[:min(bins, len(spectrum))] = spectrum[:bins]
    freqs = np.arange(bins) * SAMPLE_RATE / n_out
    roll = np.clip((freqs - 7200.0) / 800.0, 0.0, 1.0)
    kept *= 0.5 * (1 + np.cos(np.pi * roll))
    return (np.fft.irfft(kept, n_out) * (n_out / n_in)).astype(np.float32)


def apply_tilt(x: np.ndarray, db_per_octave: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Tilts the spectrum by `db_per_octave` about 1 kHz (flat below 250 Hz): a speaker's
    brightness, the voice-quality cue that eSpeak's own parameters leave fixed per variant."""
    if not db_per_octave or not len(x):
        return np.asarray(x, np.float32)
    spectrum = np.fft.rfft(np.asarray(x, np.float64))
    freqs = np.fft.rfftfreq(len(x), 1.0 / sample_rate)
    octaves = np.log2(np.clip(freqs, 250.0, None) / 1000.0)
    return np.fft.irfft(spectrum * 10 ** (db_per_octave * octaves / 20), len(x)).astype(np.float32)


def synthesize_clip(sentences: list[str], voice: VoiceParams, rng: np.random.Generator,
                    min_seconds: float = 3.0, max_seconds: float = 6.0) -> tuple[np.ndarray, list[str]]:
    """One clip: sentences spoken in order until `min_seconds` is reached, cropped to `max_seconds`.

    Returns the 16 kHz float32 clip and the sentences actually used. `rng` draws the clip's
    pauses, leading silence and noise, so the same rng state gives the same clip (in a process
    whose eSpeak history is the same, see the module docstring).
    """
    engine = _ESpeak.get()
    pieces: list[np.ndarray] = [np.zeros(int(rng.uniform(0.05, 0.3) * ESPEAK_RATE))]
    used, total = [], 0
    for sentence in sentences:
        speech = engine.speak(sentence, voice, seed=int(rng.integers(2 ** 31)))
        speech = _trim(speech.astype(np.float32) / 32768.0)
        pieces += [speech, np.zeros(int(rng.uniform(0.15, 0.35) * ESPEAK_RATE))]
        used.append(sentence)
        total += len(speech)
        if total >= min_seconds * ESPEAK_RATE:
            break
    clip = apply_tilt(to_16k(np.concatenate(pieces))[: int(max_seconds * SAMPLE_RATE)], voice.tilt)
    clip *= voice.peak / (np.abs(clip).max() + 1e-9)
    signal_rms = np.sqrt(np.mean(clip ** 2)) + 1e-9
    clip += (signal_rms * 10 ** (-voice.snr_db / 20) * rng.standard_normal(len(clip))).astype(np.float32)
    return np.clip(clip, -1.0, 1.0).astype(np.float32), used


def estimate_f0(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, fmin: float = 60.0, fmax: float = 400.0) -> float:
    """Median fundamental frequency (Hz) over voiced 40 ms frames, by normalised autocorrelation.

    A simple measurement for tests and corpus statistics; 0.0 when no frame is voiced.
    """
    x = np.asarray(audio, np.float64)
    x = x / (np.abs(x).max() + 1e-12)
    n, hop = int(0.04 * sample_rate), int(0.01 * sample_rate)
    if len(x) < n:
        return 0.0
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[::hop]
    frames = frames - frames.mean(axis=1, keepdims=True)
    frames = frames[np.sqrt((frames ** 2).mean(axis=1)) > 0.05]
    if not len(frames):
        return 0.0
    spectrum = np.fft.rfft(frames, 2 * n, axis=1)
    ac = np.fft.irfft(np.abs(spectrum) ** 2, axis=1)[:, :n]
    ac /= ac[:, :1] + 1e-12
    lo, hi = int(sample_rate / fmax), int(sample_rate / fmin)
    lags = lo + np.argmax(ac[:, lo:hi], axis=1)
    voiced = ac[np.arange(len(lags)), lags] > 0.5
    return float(np.median(sample_rate / lags[voiced])) if voiced.any() else 0.0
