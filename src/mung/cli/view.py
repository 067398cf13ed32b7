"""`mung view`: serve a results page on localhost."""

from __future__ import annotations

import click


@click.command()
@click.argument("folder", type=click.Path())
@click.option("--port", "-p", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port on 127.0.0.1 (0 = any free port).")
@click.option("--open", "open_", is_flag=True, help="Open the page in the default browser.")
def view(folder: str, port: int, open_: bool) -> None:
    """Serve FOLDER (written by `mung diarize --html` or `mung music tag --html`) and print its address."""
    import webbrowser

    from mung.view.serve import has_page, make_server

    server = make_server(folder, port)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    if not has_page(folder):
        click.echo(f"warning: {folder} holds no index.html; the page says how to write one", err=True)
    click.echo(f"serving {folder} at {url} (Ctrl-C to stop)")
    if open_:
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
