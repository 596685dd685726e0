from nlu_mlflow.cli.main import app

app()
