"""The served model as MLflow's "models from code" file: MLflow stores this file with the model and runs it
at load time, instead of unpickling a ``PetClassifier`` object (CloudPickle runs whatever a pickle holds,
and MLflow warned on every registration). Loading needs this package installed, as the pickle did."""
import mlflow

from tasks.served_model import PetClassifier

mlflow.models.set_model(PetClassifier())
