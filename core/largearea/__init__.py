"""Large areas: chunked, resumable jobs over mosaics, in process or on Dask."""
