"""Where uploads and export files live besides the project directory
(:mod:`.store`): nowhere else (the default), or an S3-compatible bucket shared by every server
process (:mod:`.s3`)."""
