"""Secrets are left out of answers (or blanked where the Swagger requires them), without copying the rest."""

from openbatch.domain.secrets import JOB_SECRETS, POOL_SECRETS, TASK_SECRETS, redacted


def test_a_body_without_secrets_is_returned_as_it_is() -> None:
    body = {"id": "p", "userAccounts": [{"name": "u"}], "startTask": {"commandLine": "x"}}
    assert redacted(body, POOL_SECRETS) is body


def test_pool_secrets_are_removed_or_blanked() -> None:
    body = {
        "id": "p",
        "userAccounts": [{"name": "a", "password": "pw", "linuxUserConfiguration": {"uid": 5, "sshPrivateKey": "k"}},
                         {"name": "b", "password": "pw2"}],
        "mountConfiguration": [{"azureFileShareConfiguration": {"accountName": "n", "accountKey": "key"}},
                               {"azureBlobFileSystemConfiguration": {"accountKey": "k", "sasKey": "s", "x": 1}}],
        "virtualMachineConfiguration": {"containerConfiguration": {"containerRegistries": [
            {"registryServer": "r", "username": "u", "password": "p"}]}},
        "startTask": {"commandLine": "x", "containerSettings": {"registry": {"username": "u", "password": "p"}}},
    }
    out = redacted(body, POOL_SECRETS)
    assert out["userAccounts"] == [{"name": "a", "password": "", "linuxUserConfiguration": {"uid": 5}},
                                   {"name": "b", "password": ""}]
    assert out["mountConfiguration"] == [{"azureFileShareConfiguration": {"accountName": "n", "accountKey": ""}},
                                         {"azureBlobFileSystemConfiguration": {"x": 1}}]
    assert out["virtualMachineConfiguration"]["containerConfiguration"]["containerRegistries"] == [
        {"registryServer": "r", "username": "u"}]
    assert out["startTask"]["containerSettings"]["registry"] == {"username": "u"}
    assert body["userAccounts"][0]["password"] == "pw", "the stored body is left alone"


def test_task_and_job_secrets() -> None:
    task = {"id": "t", "containerSettings": {"imageName": "i", "registry": {"password": "p"}}}
    assert redacted(task, TASK_SECRETS) == {"id": "t", "containerSettings": {"imageName": "i", "registry": {}}}
    job = {"id": "j", "jobPreparationTask": {"containerSettings": {"registry": {"password": "p"}}},
           "poolInfo": {"autoPoolSpecification": {"pool": {"userAccounts": [{"name": "u", "password": "p"}]}}}}
    out = redacted(job, JOB_SECRETS)
    assert out["jobPreparationTask"]["containerSettings"]["registry"] == {}
    assert out["poolInfo"]["autoPoolSpecification"]["pool"]["userAccounts"] == [{"name": "u", "password": ""}]
