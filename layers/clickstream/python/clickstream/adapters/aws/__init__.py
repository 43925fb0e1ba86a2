"""The ports on AWS: DynamoDB, S3, Firehose, Kinesis and OpenSearch, through boto3/opensearch-py."""
