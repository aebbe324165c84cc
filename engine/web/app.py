"""The page itself: Gradio Blocks over a FaceService, and its two API endpoints.

    /face     (voice)          -> (face image, feature as a JSON list, feature plot, summary)
    /compare  (first, second)  -> (first face, second face, cosine of the features)

Both are usable without the page: `gradio_client.Client(url).predict(handle_file("v.wav"),
api_name="/face")`. A refused clip or a dead server raises gr.Error with the one sentence of
`PageError`: a toast on the page (which keeps working), an AppError for an API caller.
"""

from __future__ import annotations

import inspect

import gradio as gr

from speech2face.engine.web import limits, render
from speech2face.engine.web.service import FaceService, PageError

TITLE = "Speech2Face"
# The model's face is 64 x 64: shown larger it must stay blocky, in the browser's scaling too.
CSS = ".pixelated img { image-rendering: pixelated; image-rendering: crisp-edges; }"
# System fonts: the default theme asks Google Fonts, which a loopback demo should not depend on.
FONTS = ["system-ui", "-apple-system", "Segoe UI", "Helvetica", "Arial", "sans-serif"]
MONO = ["ui-monospace", "Menlo", "Consolas", "monospace"]


def build(service: FaceService) -> gr.Blocks:
    """The Blocks of the page (not launched)."""

    def face(voice: str | None):
        result = _or_gr_error(service.face, voice)
        return (result.large_image, [round(float(v), 7) for v in result.feature], result.feature_plot,
                result.summary())

    def compare(first: str | None, second: str | None):
        a, b, similarity = _or_gr_error(service.compare, first, second)
        return a.large_image, b.large_image, round(similarity, 6)

    blocks_options, _ = _placed_options()
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(3600, 3600), **blocks_options) as page:
        gr.Markdown(f"# {TITLE}\nSpeak into the microphone or drop a clip ({limits.MIN_SECONDS:g} to "
                    f"{limits.MAX_SECONDS:g} s, at most {limits.megabytes(limits.MAX_UPLOAD_BYTES)}): the "
                    f"server at **{service.server}** answers with a face and a 128-d face feature.")
        with gr.Tab("One voice"):
            with gr.Row():
                with gr.Column():
                    voice = gr.Audio(sources=["microphone", "upload"], type="filepath", label="Voice",
                                     elem_id="voice")
                    make = gr.Button("Make the face", variant="primary", elem_id="make-face")
                with gr.Column():
                    image = _face_image("Face", "face")
                    summary = gr.Markdown(elem_id="summary")
            plot = gr.Image(label="The 128-d feature (blue > 0, red < 0)", type="numpy", format="png",
                            interactive=False, elem_id="feature-plot", height=render.PLOT_SIZE[0] + 40)
            with gr.Accordion("The feature as numbers", open=False):
                feature = gr.JSON(label="feature", elem_id="feature")
            make.click(face, inputs=[voice], outputs=[image, feature, plot, summary], api_name="face")
        with gr.Tab("Compare two voices"):
            with gr.Row():
                first = gr.Audio(sources=["microphone", "upload"], type="filepath", label="First voice",
                                 elem_id="first-voice")
                second = gr.Audio(sources=["microphone", "upload"], type="filepath", label="Second voice",
                                  elem_id="second-voice")
            run_compare = gr.Button("Compare", variant="primary", elem_id="compare")
            with gr.Row():
                first_face = _face_image("First face", "first-face")
                second_face = _face_image("Second face", "second-face")
            similarity = gr.Number(label="Cosine of the two features (1: the same voice)", precision=4,
                                   interactive=False, elem_id="cosine")
            run_compare.click(compare, inputs=[first, second], outputs=[first_face, second_face, similarity],
                              api_name="compare")
    return page


def launch(page: gr.Blocks, host: str = "127.0.0.1", port: int | None = None, block: bool = True) -> gr.Blocks:
    """Serves the page on host:port (Gradio picks a free port from 7860 when `port` is None);
    uploads over limits.MAX_UPLOAD_BYTES are refused by Gradio before they are stored."""
    _, launch_options = _placed_options()
    supported = inspect.signature(gr.Blocks.launch).parameters
    if "ssr_mode" in supported:
        launch_options["ssr_mode"] = False          # no Node.js server: the page is the static build
    page.queue(default_concurrency_limit=4)
    page.launch(server_name=host, server_port=port, share=False, inbrowser=False, show_error=False,
                max_file_size=limits.MAX_UPLOAD_BYTES, prevent_thread_lock=not block, quiet=not block,
                **launch_options)
    return page


def _face_image(label: str, elem_id: str) -> gr.Image:
    return gr.Image(label=label, type="numpy", format="png", interactive=False, elem_id=elem_id,
                    elem_classes=["pixelated"], height=render.FACE_PIXELS + 40, width=render.FACE_PIXELS)


def _placed_options() -> tuple[dict, dict]:
    """(Blocks keywords, launch keywords) for the theme and CSS: Gradio 6 takes them in launch(),
    4 and 5 in Blocks()."""
    options = {"theme": gr.themes.Default(font=FONTS, font_mono=MONO), "css": CSS}
    if "css" in inspect.signature(gr.Blocks.launch).parameters:
        return {}, options
    return options, {}


def _or_gr_error(fn, *args):
    try:
        return fn(*args)
    except PageError as error:
        raise gr.Error(str(error), **_QUIET_ERROR) from None


# A refused clip is the person's mistake, not the server's: no traceback in the console (Gradio >= 5).
_QUIET_ERROR = {"print_exception": False} if "print_exception" in inspect.signature(gr.Error).parameters else {}
