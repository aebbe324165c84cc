"""A browser demo of a running server: speak or drop a clip, see the face (`s2f web`).

Why Gradio: it is this field's convention for model demos (the Hugging Face Spaces of speech and
vision models are Gradio pages), so people know the page at a glance; it gives, in one Python
dependency, microphone recording and file upload in the browser, an upload size limit, toasts for
errors, and an HTTP API for every button that `gradio_client` calls without the page. It needs no
JavaScript build and no Node.js here (the page is its static build; SSR is off).

Layers: this package imports only engine/contract and engine/client of the project (plus gradio,
NumPy and Pillow; tests/unit/test_dependencies.py checks it): the page talks to the server through
the project's client, like any other client app.

    limits.py   what the page accepts (bytes, seconds), checked before the server is asked
    render.py   the face enlarged without blurring, the feature as bars, the cosine (NumPy only)
    service.py  a clip -> a face through the client, failures as one sentence (no Gradio)
    app.py      the Gradio Blocks, their API names (/face, /compare) and launch()
"""
