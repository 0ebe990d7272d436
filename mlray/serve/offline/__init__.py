"""Offline (batch) inference on Ray Data, apart from online serving: ``batch.run_batch_inference`` is the job
behind ``jobs/batch_predict.py``. It shares only the model loading of ``mlray.serve.prediction.versions``."""
