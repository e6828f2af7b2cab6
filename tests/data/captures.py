"""Payloads captured from real Ruby Sidekiq on this kind of machine.

Source: ../shared/reference/lab-sidekiq-6.4.1.md and lab-sidekiq-6-7-8.md.
RAW are exact bytes Sidekiq wrote (compact JSON); PRETTY were only recorded
pretty-printed, so they round-trip by value, not by bytes.
"""

RAW: dict[str, str] = {
    "6.4.1 client push": '{"retry":true,"queue":"python","class":"myapp.tasks.PyOnlyJob","args":[1,"x",{"k":[1.5,null,true]}],"jid":"8a47dd126f700ece078e7f33","created_at":1795847367.4803123,"enqueued_at":1795847367.4805548}',
    "6.4.1 client push 2": '{"retry":true,"queue":"python","class":"myapp.tasks.PyOnlyJob","args":[1,"x",{"k":[1.5,null,true]}],"jid":"d10cb107a750dc8542bbe5ed","created_at":1795848045.7721167,"enqueued_at":1795848045.7722895}',
    "7.3.2 client push": '{"retry":true,"queue":"python","class":"myapp.tasks.PyOnlyJob","args":[1,"x",{"k":[1.5,null,true]}],"jid":"f8ae127da28eacae775e12c3","created_at":1795848074.469828,"enqueued_at":1795848074.4699051}',
    "8.1.7 client push": '{"retry":true,"queue":"python","class":"myapp.tasks.PyOnlyJob","args":[1,"x",{"k":[1.5,null,true]}],"jid":"b579e10a6ef54048ec35c9b7","created_at":1795848102398,"enqueued_at":1795848102398}',
    "6.4.1 monitor push": '{"retry":true,"queue":"python","class":"myapp.tasks.PyOnlyJob","args":[2],"jid":"11b52ba3ba1895f881aff292","created_at":1795847373.032202,"enqueued_at":1795847373.032391}',
    "6.4.1 scheduled member": '{"retry":true,"queue":"python","class":"myapp.tasks.PyOnlyJob","args":[3],"jid":"95d29c4c85ef2471a6c14824","created_at":1795847373.0332463}',
    "6.4.1 options pass through": '{"retry":3,"queue":"python","class":"myapp.tasks.PyOnlyJob","args":[6],"backtrace":true,"tags":["a"],"jid":"46f36db9d7db1798c2f6d21c","created_at":1795847373.033734,"enqueued_at":1795847373.0337431}',
    "6.4.1 retry entry": '{"class":"FailJob","args":["py"],"queue":"default","jid":"66a806686d846f726b81d91d","created_at":1795847387.141646,"enqueued_at":1795847387.141646,"retry":true,"backtrace":3,"error_message":"boom py","error_class":"ArgumentError","failed_at":1795847387.1446018,"retry_count":0,"error_backtrace":"eJy1zUEOgjAQQNGrNN2giTDBEBK5CjHa1hErQ4szxejtRdQjuP35yWs1pGEE\\nMhau0UrBtil3jQ/qOCKfIw+Z3miYhEEuhhF4ss8OB8l9SNixST4GMETwjiD+\\nhL2/5XVRFSWQt78CI0eHIpE/Qr0Q+EA3JTzM8l+YuloYS9H1arVVhHckWas5\\nfsdM718EW1qe\\n"}',
    "python-written (lab)": '{"class": "HardJob", "args": [1, "two"], "queue": "default", "jid": "fab085d9012aa59f3edfdb88", "created_at": 1795847361.2397704, "enqueued_at": 1795847361.2397704, "retry": true}',
}

# Recorded pretty-printed only: compared by value.
PRETTY: dict[str, str] = {
    "6.4.1 retried once": '{"retry": true, "queue": "default", "class": "FailJob", "args": ["py"], "jid": "66a806686d846f726b81d91d", "created_at": 1795847387.141646, "enqueued_at": 1795847408.1492014, "backtrace": 3, "error_message": "boom py", "error_class": "ArgumentError", "failed_at": 1795847387.1446018, "retry_count": 1, "retried_at": 1795847408.1499243, "error_backtrace": "x"}',
    "6.4.1 dead": '{"class": "FailJob", "args": ["dead"], "queue": "default", "jid": "0d07543ff0226f4429e19a9d", "created_at": 1795847392.0739057, "enqueued_at": 1795847392.0739057, "retry": 0, "error_message": "boom dead", "error_class": "ArgumentError", "failed_at": 1795847392.0769012, "retry_count": 0}',
    "8.1.7 retried (mixed forms)": '{"retry": true, "queue": "default", "class": "FailJob", "args": ["py"], "jid": "b579e10a6ef54048ec35c9b7", "created_at": 1795848102.7956126, "enqueued_at": 1795848119408, "failed_at": 1795848102796, "retry_count": 1, "retried_at": 1795848119410, "backtrace": true, "error_message": "boom py", "error_class": "ArgumentError"}',
    "6.4.1 workers entry payload": '{"class": "SleepJob", "args": [8], "queue": "default", "jid": "9242558978fce47e5eef7fe9", "created_at": 1795847399.907974, "enqueued_at": 1795847399.907974, "retry": true}',
}
