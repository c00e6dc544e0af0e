from fvapp import create_app

app = create_app()
